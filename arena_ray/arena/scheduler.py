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
from typing import Mapping, Optional, Protocol, Sequence

from arena_ray.arena.conversation import earlier_keys, history, judge_inputs, turn_key
from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import BattlePlan
from arena_ray.arena.progress import Game, remaining
from arena_ray.judging.cache import JudgmentCache
from arena_ray.judging.prompts import PairwiseTemplate, load_template
from arena_ray.judging.verdict import judgment_from
from arena_ray.records import (
    Completion,
    Generation,
    GenerationRequest,
    Instruction,
    Judgment,
    MeterStats,
    Progress,
    SamplingSpec,
)
from arena_ray.serving.retry import RequestFailed, RetryPolicy, request
from arena_ray.settings import Config
from arena_ray.settings.arena import ArenaConfig
from arena_ray.settings.config import identity_hash


class ModelClient(Protocol):
    capacity: int  # requests worth keeping in flight

    async def generate(self, request: GenerationRequest) -> Completion: ...


@dataclass(frozen=True)
class JudgeSettings:
    name: str
    template: PairwiseTemplate
    sampling: SamplingSpec
    retry_temperature: float
    max_attempts: int
    max_answer_chars: int
    max_in_flight: Optional[int] = None
    cache: Optional[JudgmentCache] = None   # verdicts shared between runs (judge.cache_dir)
    multi_turn: Optional[PairwiseTemplate] = None   # the template of multi-turn battles (None: `template`)
    use_references: bool = True             # show reference answers where a question has them
    panel: tuple[str, ...] = ()             # a judge panel's members (each judges every game); () for one judge

    def template_for(self, instruction: Instruction) -> PairwiseTemplate:
        return self.multi_turn if instruction.turns and self.multi_turn else self.template


def judge_settings(config: Config, template: PairwiseTemplate) -> JudgeSettings:
    """The judge as every arena and judge card asks it: template, sampling (held to the score line where the
    engine can), retries, the answer cut and the judgment cache."""
    j = config.judge
    sampling = SamplingSpec(max_tokens=j.max_tokens, temperature=j.temperature,
                            top_logprobs=j.top_logprobs if j.logprob_weighted else None,
                            regex=template.output_regex if j.constrain_format else None)
    cache = JudgmentCache(j.cache_dir, identity_hash(config.judge_identity()), template.version) \
        if j.cache_dir else None
    return JudgeSettings(name=j.model, template=template, sampling=sampling, retry_temperature=j.retry_temperature,
                         max_attempts=j.max_attempts, max_answer_chars=j.max_answer_chars,
                         max_in_flight=config.arena.max_in_flight_judgments if config.arena else None, cache=cache,
                         multi_turn=load_template(j.multi_turn_prompt), use_references=j.use_references,
                         panel=tuple(j.panel))


def retry_policy(config: Config) -> RetryPolicy:
    """The arena's request timeout and retries (its defaults when the config has no arena section)."""
    if config.arena is not None:
        a = config.arena
        return RetryPolicy(a.request_timeout_s, a.max_retries, a.retry_backoff_s)
    f = ArenaConfig.model_fields
    return RetryPolicy(f["request_timeout_s"].default, f["max_retries"].default, f["retry_backoff_s"].default)


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

    async def timed(self, client: ModelClient, req: GenerationRequest) -> Completion:
        """One attempt of a request through `client`, counted in flight while it runs."""
        self.begin()
        tokens = None
        try:
            result = await client.generate(req)
            tokens = result.completion_tokens
            return result
        finally:
            self.end(tokens)

    def summary(self) -> MeterStats:
        span = max(self.last_end - self.first_start, 1e-9) if self.requests else 0.0
        return MeterStats(requests=self.requests, completion_tokens=self.completion_tokens, busy_s=round(span, 3),
                          tokens_per_s=round(self.completion_tokens / span, 2) if span else 0.0,
                          mean_in_flight=round(self._busy_integral / span, 2) if span else 0.0,
                          capacity=self.capacity, in_flight=self.in_flight, retries=self.retries,
                          failures=self.failures)


@dataclass
class Counters:
    generations_total: int = 0
    generations_done: int = 0
    games_total: int = 0
    games_done: int = 0
    games_failed: int = 0
    parse_failures: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    meters: dict[str, Meter] = field(default_factory=dict)


class BattleScheduler:
    """Admits instructions in plan order, at most `window` unfinished at a time: an instruction's battles are
    made when it is admitted and its answers are held only until its games all settle, so memory stays flat
    however many battles the run has.

    No deadlock: generation workers only ever see admitted instructions, each answer is either recorded or
    fails for good, and every game then settles (judged, failed, or dropped with a failed answer), which frees
    its instruction's slot for the next one."""

    def __init__(self, instructions: Sequence[Instruction], plan: BattlePlan,
                 competitors: dict[str, ModelClient], judge: ModelClient | Mapping[str, ModelClient],
                 judge_settings: JudgeSettings,
                 retry: RetryPolicy, ledger: Ledger, flush_every: int = 32, flush_interval_s: float = 5.0,
                 window: Optional[int] = None):
        self.instructions = {i.instruction_id: i for i in instructions}
        # One judge, or a panel's members by name; the meters are "judge" or "judge:<member>".
        self.judges = dict(judge) if isinstance(judge, Mapping) else {judge_settings.name: judge}
        self.plan, self.competitors = plan, competitors
        self.js, self.retry, self.ledger = judge_settings, retry, ledger
        self.flush_every, self.flush_interval_s = flush_every, flush_interval_s
        self.answers: dict[tuple[str, str], Generation] = {}
        self.earlier: dict[tuple[str, str], Generation] = {}   # multi-turn: answers to the turns before the last
        self.counters = Counters(meters={m: Meter(capacity=c.capacity) for m, c in competitors.items()})
        for name, client in self.judges.items():
            self.counters.meters[self._meter(name)] = Meter(capacity=judge_settings.max_in_flight or client.capacity)
        judge_capacity = sum(self.counters.meters[self._meter(n)].capacity for n in self.judges)
        self._buffers: dict[str, list] = {"generations": [], "judgments": []}
        self._flush_lock = asyncio.Lock()
        # Enough instructions in flight to keep every competitor and the judge busy, and no more.
        self.window_size = window or max(8, 2 * judge_capacity + sum(c.capacity for c in competitors.values()))

    def _meter(self, judge: str) -> str:
        return f"judge:{judge}" if self.js.panel else "judge"

    def _member(self, game: Game) -> str:
        return game.judge or self.js.name

    @property
    def judge_backlog(self) -> int:
        return sum(q.qsize() for q in getattr(self, "judge_queues", {}).values())

    # ---- plan what is left -------------------------------------------------------------------------------
    def _load(self) -> dict[str, int]:
        """Count what is left (one pass, nothing kept per battle); reload the answers still to be judged.
        Returns per model how many answers it still has to give."""
        self.index = self.ledger.index(self.js.panel)
        answers_to_give: dict[str, int] = defaultdict(int)
        resumable: set[str] = set()
        for work in remaining(self.plan, self.index, self.js.max_attempts):
            self.counters.games_total += len(work.games)
            for model in work.to_answer:
                answers_to_give[model] += 1
            if any((work.instruction_id, m) in self.index.answered for m in self.competitors):
                resumable.add(work.instruction_id)
        self.counters.generations_total = sum(answers_to_give.values())
        self.answers = {(g.instruction_id, g.model): g for g in self.ledger.generations_of(resumable)}
        self.earlier = {(g.instruction_id, g.model): g for g in self.ledger.generations_of(self._earlier_turns())}
        return answers_to_give

    def _earlier_turns(self) -> set[str]:
        """Ledger ids of recorded answers to earlier turns of multi-turn instructions still to be answered or
        judged: a resume continues a conversation from its last answered turn."""
        answered = {iid for iid, _ in self.index.answered}
        return {key for work in remaining(self.plan, self.index, self.js.max_attempts)
                for key in earlier_keys(self.instructions[work.instruction_id]) if key in answered}

    # ---- run ---------------------------------------------------------------------------------------------
    async def run(self) -> Progress:
        answers_to_give = self._load()
        self.judge_queues = {name: asyncio.Queue() for name in self.judges}
        self.slots = asyncio.Semaphore(self.window_size)
        self.unsettled: dict[str, int] = {}                       # admitted instruction -> games not settled
        self.waiting: dict[tuple[str, str], list] = defaultdict(list)  # games parked on a missing answer
        self.failed_answers: set[tuple[str, str]] = set()         # given up on in this run (a re-run asks again)
        queues = {m: asyncio.Queue() for m in answers_to_give}
        workers = {m: min(self.competitors[m].capacity, n) for m, n in answers_to_give.items()}
        tasks = [asyncio.create_task(self._generation_worker(m, queues[m])) for m, n in workers.items()
                 for _ in range(n)]
        admitter = asyncio.create_task(self._admit_all(queues, workers))
        judges = [asyncio.create_task(self._judge_worker(name)) for name in self.judges
                  for _ in range(self.counters.meters[self._meter(name)].capacity)]
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await asyncio.gather(admitter, *tasks)
            for queue in self.judge_queues.values():  # a retried game is queued before its attempt is done
                await queue.join()
        finally:
            for task in [admitter, *tasks, *judges, flusher]:
                task.cancel()
            await self._flush()
        return self.summary()

    async def _admit_all(self, queues: dict[str, asyncio.Queue], workers: dict[str, int]) -> None:
        """Admit each instruction with work left as a slot frees; then tell the generation workers to stop."""
        for work in remaining(self.plan, self.index, self.js.max_attempts):
            await self.slots.acquire()
            self.unsettled[work.instruction_id] = len(work.games)
            for model in work.to_answer:
                queues[model].put_nowait(work.instruction_id)
            for game in work.games:
                self._route(game)
        for model, queue in queues.items():
            for _ in range(workers[model]):
                queue.put_nowait(None)

    def _settle(self, iid: str, games: int = 1) -> None:
        """Count settled games; when an instruction has none left, drop its answers and free its slot."""
        self.unsettled[iid] -= games
        if self.unsettled[iid] > 0:
            return
        del self.unsettled[iid]
        for model in self.competitors:
            self.answers.pop((iid, model), None)
            self.failed_answers.discard((iid, model))
            for key in earlier_keys(self.instructions[iid]):
                self.earlier.pop((key, model), None)
        self.slots.release()

    def _route(self, game) -> None:
        """Queue a game if both answers exist; park it on the first missing one; drop it if one failed."""
        pb = game.battle
        for m in (pb.model_a, pb.model_b):
            gen = self.answers.get((pb.instruction_id, m))
            if (pb.instruction_id, m) in self.failed_answers:
                self.counters.games_total -= 1  # not judged in this run: pending for a re-run
                self._settle(pb.instruction_id)
                return
            if gen is None:
                self.waiting[(pb.instruction_id, m)].append(game)
                return
            if gen.error:
                self.counters.games_total -= 1  # no answer, no game: tallied as a failed battle
                self._settle(pb.instruction_id)
                return
        self.judge_queues[self._member(game)].put_nowait(game)

    async def _call(self, client: ModelClient, req: GenerationRequest, meter: Meter) -> Completion:
        """The retrying request path, every attempt metered; a request that fails for good is counted."""
        class Metered:
            async def generate(self, r: GenerationRequest) -> Completion:
                return await meter.timed(client, r)

        def failed(err: BaseException, attempt: int) -> None:
            meter.retries += attempt < self.retry.max_retries

        try:
            return await request(Metered(), req, self.retry, on_failure=failed)
        except RequestFailed:
            meter.failures += 1
            raise

    async def _answer(self, model: str, instruction: Instruction) -> Generation:
        """The model's answer to the instruction's last turn, after answering (or taking from the ledger) every
        turn before it; earlier turns are recorded as they come."""
        said: list[str] = []
        for k in range(len(instruction.user_turns)):
            key = turn_key(instruction, k)
            gen = self.earlier.get((key, model))
            if gen is None:
                request = GenerationRequest(f"gen-{model}-{key}", history(instruction, said), None, key)
                c = await self._call(self.competitors[model], request, self.counters.meters[model])
                gen = Generation(key, model, c.text, c.prompt_tokens, c.completion_tokens, c.latency_s,
                                 c.finish_reason)
                if key != instruction.instruction_id:
                    self.earlier[(key, model)] = gen
                    await self._record("generations", gen)
            said.append(gen.text)
        return gen

    async def _generation_worker(self, model: str, queue: asyncio.Queue) -> None:
        while (iid := await queue.get()) is not None:
            try:
                gen = await self._answer(model, self.instructions[iid])
            except self.retry.permanent as err:
                gen = Generation(iid, model, "", None, None, 0.0, "error", error=str(err)[:500])
            except RequestFailed:
                # Not recorded: a re-run asks again. Its games stay unjudged (pending for that re-run).
                self.failed_answers.add((iid, model))
                for game in self.waiting.pop((iid, model), []):
                    self._route(game)
                continue
            self.answers[(iid, model)] = gen
            self.counters.generations_done += 1
            await self._record("generations", gen)
            for game in self.waiting.pop((iid, model), []):
                self._route(game)

    def _judge_request(self, game: Game) -> tuple[GenerationRequest, Optional[str]]:
        """The judge request of a game, and its judgment-cache key (None without a cache)."""
        pb, position, attempt = game.battle, game.position, game.attempt
        first, second = (pb.model_a, pb.model_b) if position == 0 else (pb.model_b, pb.model_a)
        instruction = self.instructions[pb.instruction_id]
        question, shown_1, shown_2, reference = judge_inputs(
            instruction, self._said(instruction, first), self._said(instruction, second), self.js.max_answer_chars,
            self.js.use_references)
        shown, template = (shown_1, shown_2), self.js.template_for(instruction)
        messages = template.messages(question, *shown, reference=reference)
        sampling = self.js.sampling
        if sampling.regex and template.output_regex != self.js.template.output_regex:
            sampling = replace(sampling, regex=template.output_regex)
        if attempt:
            sampling = replace(sampling, temperature=self.js.retry_temperature, seed=attempt)
        asked = question if reference is None else f"{question}\n[reference]\n{reference}"
        key = self.js.cache.key(asked, *shown, sampling, judge=game.judge) if self.js.cache else None
        return GenerationRequest(f"judge-{pb.battle_id}-{position}-{attempt}", messages, sampling), key

    def _said(self, instruction: Instruction, model: str) -> list[str]:
        """A competitor's answers to every turn of an instruction."""
        earlier = [self.earlier[(key, model)].text for key in earlier_keys(instruction)]
        return [*earlier, self.answers[(instruction.instruction_id, model)].text]

    async def _verdict(self, game: Game) -> Completion:
        """The judge's completion for a game: from the judgment cache where another run already asked it."""
        request, key = self._judge_request(game)
        cached = self.js.cache.get(key) if key else None
        if cached is not None:
            self.counters.cache_hits += 1
            return cached
        member = self._member(game)
        completion = await self._call(self.judges[member], request, self.counters.meters[self._meter(member)])
        if key:
            self.counters.cache_misses += 1
            self.js.cache.put(key, completion)
        return completion

    async def _judge_worker(self, name: str) -> None:
        queue = self.judge_queues[name]
        while True:
            game = await queue.get()
            try:
                await self._judge_game(game)
            finally:
                queue.task_done()

    async def _judge_game(self, game: Game) -> None:
        pb, position, attempt = game.battle, game.position, game.attempt
        template = self.js.template_for(self.instructions[pb.instruction_id])
        base = dict(battle_id=pb.battle_id, instruction_id=pb.instruction_id, model_a=pb.model_a,
                    model_b=pb.model_b, position=position, attempt=attempt, judge=self._member(game),
                    prompt_version=template.version)
        try:
            c = await self._verdict(game)
        except RequestFailed as err:
            judgment = Judgment(**base, score_a=None, score_b=None, weighted_score_a=None, weighted_score_b=None,
                                explanation="", raw="", parse_ok=False, error=f"request failed: {err}",
                                tstamp=time.time())
        else:
            judgment = judgment_from(c, {**base, "tstamp": time.time()}, position, template.score_line)
        await self._record("judgments", judgment)
        if judgment.parse_ok:
            self.counters.games_done += 1
            self._settle(pb.instruction_id)
            return
        self.counters.parse_failures += 1
        if attempt + 1 < self.js.max_attempts:
            self.judge_queues[self._member(game)].put_nowait(Game(pb, position, attempt + 1, game.judge))
        else:
            self.counters.games_failed += 1
            self._settle(pb.instruction_id)

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

    def summary(self) -> Progress:
        c = self.counters
        return Progress(c.generations_total, c.generations_done, c.games_total, c.games_done, c.games_failed,
                        c.parse_failures, c.cache_hits, c.cache_misses, {k: m.summary() for k, m in c.meters.items()})
