"""The battle scheduler: pure asyncio, no Ray. The coordinator actor runs it with Serve handles; unit tests
run it with fake clients.

Each competitor answers each instruction once (answers already in the ledger are reused); a battle's two
games are queued as soon as both answers exist, so judging overlaps generation. In-flight requests are
bounded per model by its serving capacity (replicas * max_ongoing_requests) and for the judge by
max_in_flight_judgments. Transport failures are retried with backoff; unparsable verdicts are recorded
with their raw text and re-asked with sampling on, up to max_attempts. Results stream to the ledger.
"""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Optional, Protocol, Sequence

from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import PlannedBattle
from arena_ray.arena.progress import remaining_work
from arena_ray.judging.parse import parse_pairwise, weighted_score
from arena_ray.judging.prompts import PairwiseTemplate
from arena_ray.records import (
    ChatMessage,
    Completion,
    Generation,
    GenerationRequest,
    Instruction,
    Judgment,
    SamplingSpec,
)


class ModelClient(Protocol):
    capacity: int  # requests worth keeping in flight

    async def generate(self, request: GenerationRequest) -> Completion: ...


class RequestFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class JudgeSettings:
    name: str
    template: PairwiseTemplate
    sampling: SamplingSpec
    retry_temperature: float
    max_attempts: int
    max_answer_chars: int
    max_in_flight: Optional[int] = None


@dataclass(frozen=True)
class RetrySettings:
    request_timeout_s: float = 600.0
    max_retries: int = 3
    backoff_s: float = 1.0
    # Exception types that retrying cannot fix (e.g. a replay file lacks the answer).
    permanent: tuple[type, ...] = ()


@dataclass
class Meter:
    """Requests, tokens and time-weighted in-flight count of one role (a competitor, or the judge)."""

    capacity: int = 1
    requests: int = 0
    completion_tokens: int = 0
    retries: int = 0
    failures: int = 0
    first_start: float = 0.0
    last_end: float = 0.0
    in_flight: int = 0
    _busy_integral: float = 0.0
    _last_change: float = 0.0

    def _advance(self, now: float) -> None:
        if self._last_change:
            self._busy_integral += self.in_flight * (now - self._last_change)
        self._last_change = now

    def begin(self) -> None:
        now = time.perf_counter()
        self.first_start = self.first_start or now
        self._advance(now)
        self.in_flight += 1

    def end(self, tokens: Optional[int]) -> None:
        now = time.perf_counter()
        self._advance(now)
        self.in_flight -= 1
        self.last_end = now
        self.requests += 1
        self.completion_tokens += tokens or 0

    def summary(self) -> dict:
        span = max(self.last_end - self.first_start, 1e-9) if self.requests else 0.0
        return {"requests": self.requests, "completion_tokens": self.completion_tokens, "busy_s": round(span, 3),
                "tokens_per_s": round(self.completion_tokens / span, 2) if span else 0.0,
                "mean_in_flight": round(self._busy_integral / span, 2) if span else 0.0,
                "capacity": self.capacity, "in_flight": self.in_flight, "retries": self.retries,
                "failures": self.failures}


@dataclass
class Counters:
    generations_total: int = 0
    generations_done: int = 0
    games_total: int = 0
    games_done: int = 0
    games_failed: int = 0
    parse_failures: int = 0
    meters: dict[str, Meter] = field(default_factory=dict)


class InstructionWindow:
    """Admits instructions to generation in plan order, at most `size` unfinished at a time: answers are held
    only until an instruction's games are all settled, so memory stays bounded however long the run.

    Admission in one global order cannot deadlock: every admitted instruction precedes, in every model's
    queue, any instruction a worker is waiting to admit, so its answers always come."""

    def __init__(self, order: Sequence[str], pending: dict[str, int], size: int):
        self.order, self.pending, self.size = list(order), pending, size
        self.next = 0
        self.open: set[str] = set()
        self.closed: set[str] = set()
        self.changed = asyncio.Condition()
        self._admit()

    def _admit(self) -> None:
        while self.next < len(self.order) and len(self.open) < self.size:
            self.open.add(self.order[self.next])
            self.next += 1

    async def enter(self, iid: str) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: iid in self.open or iid in self.closed)

    async def settle(self, iid: str, games: int = 1) -> bool:
        """Count settled games; True when the instruction has none left (its answers can go)."""
        self.pending[iid] -= games
        if self.pending[iid] > 0:
            return False
        async with self.changed:
            self.open.discard(iid)
            self.closed.add(iid)
            self._admit()
            self.changed.notify_all()
        return True


class BattleScheduler:
    def __init__(self, instructions: Sequence[Instruction], plan: Sequence[PlannedBattle],
                 competitors: dict[str, ModelClient], judge: ModelClient, judge_settings: JudgeSettings,
                 retry: RetrySettings, ledger: Ledger, flush_every: int = 32, flush_interval_s: float = 5.0,
                 window: Optional[int] = None):
        self.text = {i.instruction_id: i.text for i in instructions}
        self.plan, self.competitors, self.judge = plan, competitors, judge
        self.js, self.retry, self.ledger = judge_settings, retry, ledger
        self.flush_every, self.flush_interval_s = flush_every, flush_interval_s
        self.answers: dict[tuple[str, str], Generation] = {}
        self.counters = Counters(meters={m: Meter(capacity=c.capacity) for m, c in competitors.items()})
        judge_capacity = judge_settings.max_in_flight or judge.capacity
        self.counters.meters["judge"] = Meter(capacity=judge_capacity)
        self._buffers: dict[str, list] = {"generations": [], "judgments": []}
        self._flush_lock = asyncio.Lock()
        self.window_size = window

    # ---- plan what is left -------------------------------------------------------------------------------
    def _load(self):
        generations = self.ledger.generations()
        games, needed = remaining_work(self.plan, generations, self.ledger.judgments(), self.js.max_attempts)
        open_ids = {pb.instruction_id for pb, _, _ in games}
        self.answers = {(g.instruction_id, g.model): g for g in generations if g.instruction_id in open_ids}
        return games, needed

    def _window(self, games, needed) -> InstructionWindow:
        pending: dict[str, int] = defaultdict(int)
        for pb, _, _ in games:
            pending[pb.instruction_id] += 1
        to_generate = {iid for ids in needed.values() for iid in ids}
        order = list(dict.fromkeys(pb.instruction_id for pb, _, _ in games if pb.instruction_id in to_generate))
        # Enough instructions in flight to keep every competitor and the judge busy, and no more.
        size = self.window_size or max(8, 2 * self.counters.meters["judge"].capacity
                                       + sum(c.capacity for c in self.competitors.values()))
        return InstructionWindow(order, pending, size)

    async def _settle(self, iid: str, games: int = 1) -> None:
        if await self.window.settle(iid, games):
            for model in self.competitors:
                self.answers.pop((iid, model), None)

    # ---- run ---------------------------------------------------------------------------------------------
    async def run(self) -> dict:
        games, needed = self._load()
        self.counters.games_total = len(games)
        self.counters.generations_total = sum(len(v) for v in needed.values())
        waiting: dict[tuple[str, str], list] = defaultdict(list)
        self.judge_queue: asyncio.Queue = asyncio.Queue()
        self.window = self._window(games, needed)
        for game in games:
            await self._route(game, waiting)
        workers = []
        for model, ids in needed.items():
            queue: asyncio.Queue = asyncio.Queue()
            for iid in ids:
                queue.put_nowait(iid)
            workers += [asyncio.create_task(self._generation_worker(model, queue, waiting))
                        for _ in range(min(self.competitors[model].capacity, len(ids)))]
        judges = [asyncio.create_task(self._judge_worker()) for _ in range(self.counters.meters["judge"].capacity)]
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await asyncio.gather(*workers)
            await self.judge_queue.join()
        finally:
            for task in judges + [flusher]:
                task.cancel()
            await self._flush()
        self.counters.games_total -= sum(len(v) for v in waiting.values())  # games whose answer never came
        return self.summary()

    async def _route(self, game, waiting) -> None:
        """Queue a game if both answers exist; else park it on the first missing answer."""
        pb = game[0]
        for m in (pb.model_a, pb.model_b):
            gen = self.answers.get((pb.instruction_id, m))
            if gen is None:
                waiting[(pb.instruction_id, m)].append(game)
                return
            if gen.error:
                self.counters.games_total -= 1  # no answer, no game: tallied as a failed battle
                await self._settle(pb.instruction_id)
                return
        self.judge_queue.put_nowait(game)

    async def _call(self, client: ModelClient, request: GenerationRequest, meter: Meter) -> Completion:
        last: BaseException | None = None
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                meter.retries += 1
                await asyncio.sleep(self.retry.backoff_s * 2 ** (attempt - 1))
            meter.begin()
            tokens = None
            try:
                result = await asyncio.wait_for(client.generate(request), self.retry.request_timeout_s)
                tokens = result.completion_tokens
                return result
            except self.retry.permanent:
                raise
            except asyncio.TimeoutError:
                last = TimeoutError(f"no answer within {self.retry.request_timeout_s:g}s")
            except Exception as err:  # a dead replica, a transport error: retry
                last = err
            finally:
                meter.end(tokens)
        meter.failures += 1
        raise RequestFailed(f"{type(last).__name__}: {last}"[:500])

    async def _generation_worker(self, model: str, queue: asyncio.Queue, waiting) -> None:
        meter = self.counters.meters[model]
        while not queue.empty():
            iid = queue.get_nowait()
            await self.window.enter(iid)
            request = GenerationRequest(f"gen-{model}-{iid}", (ChatMessage("user", self.text[iid]),), None, iid)
            try:
                c = await self._call(self.competitors[model], request, meter)
                gen = Generation(iid, model, c.text, c.prompt_tokens, c.completion_tokens, c.latency_s,
                                 c.finish_reason)
            except self.retry.permanent as err:
                gen = Generation(iid, model, "", None, None, 0.0, "error", error=str(err)[:500])
            except RequestFailed:
                # Not recorded: a re-run asks again. Its games stay unjudged (pending for that re-run).
                dropped = waiting.pop((iid, model), [])
                self.counters.games_total -= len(dropped)
                if dropped:
                    await self._settle(iid, len(dropped))
                continue
            self.answers[(iid, model)] = gen
            self.counters.generations_done += 1
            await self._record("generations", gen)
            for game in waiting.pop((iid, model), []):
                await self._route(game, waiting)

    def _judge_request(self, pb: PlannedBattle, position: int, attempt: int) -> GenerationRequest:
        first, second = (pb.model_a, pb.model_b) if position == 0 else (pb.model_b, pb.model_a)
        cut = self.js.max_answer_chars

        def answer(m: str) -> str:
            text = self.answers[(pb.instruction_id, m)].text
            return text if len(text) <= cut else text[:cut] + "\n[... answer truncated ...]"

        messages = self.js.template.messages(self.text[pb.instruction_id], answer(first), answer(second))
        sampling = self.js.sampling
        if attempt:
            sampling = replace(sampling, temperature=self.js.retry_temperature, seed=attempt)
        return GenerationRequest(f"judge-{pb.battle_id}-{position}-{attempt}", messages, sampling)

    async def _judge_worker(self) -> None:
        while True:
            game = await self.judge_queue.get()
            try:
                await self._judge_game(*game)
            finally:
                self.judge_queue.task_done()

    async def _judge_game(self, pb: PlannedBattle, position: int, attempt: int) -> None:
        base = dict(battle_id=pb.battle_id, instruction_id=pb.instruction_id, model_a=pb.model_a,
                    model_b=pb.model_b, position=position, attempt=attempt, judge=self.js.name,
                    prompt_version=self.js.template.version)
        try:
            c = await self._call(self.judge, self._judge_request(pb, position, attempt), self.counters.meters["judge"])
        except RequestFailed as err:
            judgment = Judgment(**base, score_a=None, score_b=None, weighted_score_a=None, weighted_score_b=None,
                                explanation="", raw="", parse_ok=False, error=f"request failed: {err}")
        else:
            judgment = judgment_from(c, base, position)
        await self._record("judgments", judgment)
        if judgment.parse_ok:
            self.counters.games_done += 1
            await self._settle(pb.instruction_id)
            return
        self.counters.parse_failures += 1
        if attempt + 1 < self.js.max_attempts:
            self.judge_queue.put_nowait((pb, position, attempt + 1))
        else:
            self.counters.games_failed += 1
            await self._settle(pb.instruction_id)

    # ---- ledger ------------------------------------------------------------------------------------------
    async def _record(self, table: str, record) -> None:
        self._buffers[table].append(record)
        if len(self._buffers[table]) >= self.flush_every:
            await self._flush()

    async def _flush(self) -> None:
        async with self._flush_lock:
            for table, buffer in self._buffers.items():
                batch, self._buffers[table] = buffer, []
                if batch:
                    await asyncio.to_thread(self.ledger.append, table, batch)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self._flush()

    def summary(self) -> dict:
        c = self.counters
        return {"generations_total": c.generations_total, "generations_done": c.generations_done,
                "games_total": c.games_total, "games_done": c.games_done, "games_failed": c.games_failed,
                "parse_failures": c.parse_failures, "meters": {k: m.summary() for k, m in c.meters.items()}}


def judgment_from(c: Completion, base: dict, position: int) -> Judgment:
    """A judge completion → a Judgment with scores mapped back to (model_a, model_b)."""
    verdict = parse_pairwise(c.text)
    s1, s2, w1, w2 = verdict.score_1, verdict.score_2, None, None
    if verdict.ok and c.logprobs:
        w1, w2 = weighted_score(c.logprobs, verdict.span_1, c.text), weighted_score(c.logprobs, verdict.span_2, c.text)
        if w1 is None or w2 is None:
            w1 = w2 = None
    if position == 1:
        s1, s2, w1, w2 = s2, s1, w2, w1
    return Judgment(**base, score_a=s1, score_b=s2, weighted_score_a=w1, weighted_score_b=w2,
                    explanation=verdict.explanation, raw=c.text, parse_ok=verdict.ok, error=verdict.error,
                    latency_s=c.latency_s, completion_tokens=c.completion_tokens)
