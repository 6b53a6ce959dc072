"""The scheduler's logic with instant fake engines (no Ray): caching, retries, parse failures, resume."""
import asyncio
from collections import Counter

import pytest

from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import BattlePlan, model_pairs
from arena_ray.arena.progress import tally
from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings
from arena_ray.judging.prompts import load_template
from arena_ray.records import Completion, GenerationRequest, Instruction, SamplingSpec
from arena_ray.serving.engines import MissingAnswer
from arena_ray.serving.retry import RetryPolicy
from arena_ray.testing.fakes import EchoEngine, FlakyEngine, LengthJudge

TEMPLATE = load_template("pairwise-v1")
INSTRUCTIONS = [Instruction(f"q{i}", f"question number {i}", "test") for i in range(5)]
MODELS = {"short": 1, "mid": 2, "long": 3}


class Client:
    def __init__(self, engine, capacity=4):
        self.engine, self.capacity = engine, capacity
        self.requests = Counter()

    async def generate(self, request: GenerationRequest) -> Completion:
        self.requests[request.request_id] += 1
        return await self.engine.generate(request)


def make(tmp_path, judge_engine=None, competitors=None, max_attempts=3, timeout=5.0, flush_every=4,
         permanent=(MissingAnswer,)):
    competitors = competitors or {m: Client(EchoEngine(repeat=r)) for m, r in MODELS.items()}
    judge = Client(judge_engine or LengthJudge(), capacity=6)
    plan = BattlePlan(tuple(i.instruction_id for i in INSTRUCTIONS), tuple(model_pairs(list(competitors), "all_pairs")),
                      "judge", TEMPLATE.version)
    settings = JudgeSettings("judge", TEMPLATE, SamplingSpec(max_tokens=64, regex=TEMPLATE.output_regex), 0.7,
                             max_attempts, 4000)
    sched = BattleScheduler(INSTRUCTIONS, plan, competitors, judge, settings,
                            RetryPolicy(timeout_s=timeout, max_retries=2, backoff_s=0.0,
                                          permanent=permanent),
                            Ledger(tmp_path), flush_every=flush_every, flush_interval_s=0.05)
    return sched, plan, competitors, judge


def final(tmp_path, plan, max_attempts=3):
    ledger = Ledger(tmp_path)
    return tally(plan, ledger.judgments(), ledger.generations(), max_attempts=max_attempts,
                 disagreement="average", tie_margin=0.0, use_weighted=False)


def test_full_run_judges_every_battle_twice_and_generates_once(tmp_path):
    sched, plan, competitors, judge = make(tmp_path)
    stats = asyncio.run(sched.run())
    assert stats.games_done == 2 * len(plan) == stats.games_total
    for client in competitors.values():
        assert len(client.requests) == len(INSTRUCTIONS) and set(client.requests.values()) == {1}
    t = final(tmp_path, plan)
    assert len(t.battles) == len(plan) and t.pending == 0 and t.failed_battles == 0
    wins = Counter(b.model_a if b.winner == "model_a" else b.model_b for b in t.battles)
    assert wins == {"long": 10, "mid": 5}  # the judge prefers longer answers: long > mid > short
    assert all(b.consistent for b in t.battles)
    assert stats.meters["judge"].requests == 2 * len(plan)


def test_rerun_of_a_finished_run_requests_nothing(tmp_path):
    asyncio.run(make(tmp_path)[0].run())
    sched, plan, competitors, judge = make(tmp_path)
    stats = asyncio.run(sched.run())
    assert stats.games_total == 0 and stats.generations_total == 0
    assert not judge.requests and not any(c.requests for c in competitors.values())


def test_killed_run_resumes_to_the_same_battles_exactly_once(tmp_path):
    reference = tmp_path / "reference"
    asyncio.run(make(reference)[0].run())
    ref_ids = {b.battle_id for b in final(reference, make(reference)[1]).battles}

    crashed = tmp_path / "crashed"
    sched, plan, _, _ = make(crashed, judge_engine=LengthJudge(delay_s=0.01), flush_every=1)

    async def run_then_kill():
        task = asyncio.create_task(sched.run())
        while sched.counters.games_done < len(plan) // 2:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_kill())
    recorded = {(g.instruction_id, g.model) for g in Ledger(crashed).generations()}
    assert 0 < final(crashed, plan).pending < len(plan)

    sched2, plan2, competitors2, _ = make(crashed)
    asyncio.run(sched2.run())
    for name, client in competitors2.items():  # no answer that was recorded is asked for again
        assert not {(rid.split("-", 2)[2], name) for rid in client.requests} & recorded
    t = final(crashed, plan2)
    assert {b.battle_id for b in t.battles} == ref_ids and len(t.battles) == len(ref_ids)
    ok_games = Counter((j.battle_id, j.position) for j in Ledger(crashed).judgments() if j.parse_ok)
    assert set(ok_games.values()) == {1}


def test_transport_failures_are_retried(tmp_path):
    competitors = {m: Client(EchoEngine(repeat=r)) for m, r in MODELS.items()}
    competitors["mid"] = Client(FlakyEngine(EchoEngine(repeat=2), fail_calls=(1, 2)))
    sched, plan, _, _ = make(tmp_path, competitors=competitors,
                             judge_engine=FlakyEngine(LengthJudge(), fail_calls=(3,)))
    stats = asyncio.run(sched.run())
    assert stats.meters["mid"].retries == 2 and stats.meters["judge"].retries == 1
    assert len(final(tmp_path, plan).battles) == len(plan)


def test_unparsable_verdicts_are_recorded_and_reasked(tmp_path):
    sched, plan, _, judge = make(tmp_path, judge_engine=LengthJudge(garbage_first=True))
    stats = asyncio.run(sched.run())
    rows = Ledger(tmp_path).judgments()
    bad = [j for j in rows if not j.parse_ok]
    assert len(bad) == 2 * len(plan) and all(j.raw == "I refuse to score." and j.attempt == 0 for j in bad)
    assert stats.parse_failures == 2 * len(plan)
    assert len(final(tmp_path, plan).battles) == len(plan)


def test_games_that_never_parse_fail_visibly_not_as_ties(tmp_path):
    class Garbage:
        async def generate(self, request):
            return Completion("", 1, 0, "stop", 0.0)

    sched, plan, _, _ = make(tmp_path, judge_engine=Garbage(), max_attempts=2)
    stats = asyncio.run(sched.run())
    assert stats.games_failed == 2 * len(plan)
    t = final(tmp_path, plan, max_attempts=2)
    assert not t.battles and t.failed_battles == len(plan)
    assert all(j.error == "empty output" for j in Ledger(tmp_path).judgments())


def test_judge_timeouts_become_failed_attempts(tmp_path):
    sched, plan, _, _ = make(tmp_path, judge_engine=LengthJudge(delay_s=0.5), timeout=0.05, max_attempts=1)
    stats = asyncio.run(sched.run())
    assert stats.games_failed == 2 * len(plan)
    assert all("request failed: TimeoutError" in j.error for j in Ledger(tmp_path).judgments())


def test_missing_replay_answer_is_recorded_once_and_fails_its_battles(tmp_path):
    class PartialReplay:
        async def generate(self, request):
            if request.instruction_id == "q0":
                raise MissingAnswer("answers.jsonl: no recorded answer for instruction 'q0'")
            return Completion("a long recorded answer " * 3, None, None, "replay", 0.0)

    competitors = {m: Client(EchoEngine(repeat=r)) for m, r in MODELS.items()}
    competitors["replay"] = Client(PartialReplay())
    sched, plan, _, _ = make(tmp_path, competitors=competitors)
    asyncio.run(sched.run())
    errors = [g for g in Ledger(tmp_path).generations() if g.error]
    assert [(g.instruction_id, g.model) for g in errors] == [("q0", "replay")]
    assert competitors["replay"].requests["gen-replay-q0"] == 1  # permanent: not retried
    t = final(tmp_path, plan)
    assert t.failed_battles == 3 and t.pending == 0


def test_answers_are_held_only_inside_the_instruction_window(tmp_path):
    instructions = [Instruction(f"w{i}", f"question {i}", "test") for i in range(30)]
    competitors = {m: Client(EchoEngine(repeat=r)) for m, r in MODELS.items()}
    held: list[int] = []

    class Watching(Client):
        async def generate(self, request):
            held.append(len(sched.answers))
            return await super().generate(request)

    plan = BattlePlan(tuple(i.instruction_id for i in instructions), tuple(model_pairs(list(competitors), "all_pairs")),
                      "judge", TEMPLATE.version)
    settings = JudgeSettings("judge", TEMPLATE, SamplingSpec(max_tokens=64), 0.7, 3, 4000)
    sched = BattleScheduler(instructions, plan, competitors, Watching(LengthJudge(), capacity=2), settings,
                            RetryPolicy(5.0, 0, 0.0), Ledger(tmp_path), flush_every=8, window=3)
    asyncio.run(sched.run())
    assert len(final(tmp_path, plan).battles) == len(plan)
    assert max(held) <= 3 * len(MODELS)  # at most 3 instructions' answers at any time
    assert sched.answers == {}            # all released at the end


def test_failed_generations_do_not_stall_the_window(tmp_path):
    instructions = [Instruction(f"f{i}", f"question {i}", "test") for i in range(12)]
    competitors = {"ok": Client(EchoEngine(repeat=1)), "flaky": Client(FlakyEngine(EchoEngine(repeat=2),
                                                                                   fail_calls=range(1, 7)))}
    plan = BattlePlan(tuple(i.instruction_id for i in instructions), tuple(model_pairs(list(competitors), "all_pairs")),
                      "judge", TEMPLATE.version)
    settings = JudgeSettings("judge", TEMPLATE, SamplingSpec(max_tokens=64), 0.7, 3, 4000)
    sched = BattleScheduler(instructions, plan, competitors, Client(LengthJudge()), settings,
                            RetryPolicy(5.0, 0, 0.0), Ledger(tmp_path), window=2)
    summary = asyncio.run(asyncio.wait_for(sched.run(), timeout=30))
    assert summary.generations_done == 12 + 6 and summary.games_done == 2 * 6


def test_a_failed_answer_drops_games_parked_on_the_other_answer(tmp_path):
    """The game waits for the slow model's answer; the other model's answer fails first. When the slow one
    arrives the game must be dropped (pending for a re-run), not parked on the failed answer for ever."""
    instructions = [Instruction(f"s{i}", f"question {i}", "test") for i in range(3)]

    def run(bad_calls):
        competitors = {"a_slow": Client(EchoEngine(repeat=1, delay_s=0.05)),
                       "b_bad": Client(FlakyEngine(EchoEngine(repeat=2), fail_calls=bad_calls))}
        plan = BattlePlan(tuple(i.instruction_id for i in instructions),
                          tuple(model_pairs(list(competitors), "all_pairs")), "judge", TEMPLATE.version)
        settings = JudgeSettings("judge", TEMPLATE, SamplingSpec(max_tokens=64), 0.7, 3, 4000)
        sched = BattleScheduler(instructions, plan, competitors, Client(LengthJudge()), settings,
                                RetryPolicy(5.0, 0, 0.0), Ledger(tmp_path), window=1)
        return asyncio.run(asyncio.wait_for(sched.run(), timeout=30)), plan, competitors

    summary, plan, _ = run(bad_calls=range(1, 100))
    assert summary.generations_done == 3 and summary.games_total == 0 and summary.games_done == 0
    assert final(tmp_path, plan).pending == 3
    summary, plan, competitors = run(bad_calls=())
    assert not competitors["a_slow"].requests  # its recorded answers are reused
    assert summary.games_done == 6 and len(final(tmp_path, plan).battles) == 3
