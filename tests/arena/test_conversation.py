"""Multi-turn battles with instant fake engines (no Ray): each competitor answers MT-bench's turns one after
another with its own earlier answers in the conversation, every turn is recorded, a crash mid-conversation
resumes from the last answered turn, and the judge sees both whole conversations (and the reference answers
where a question has them)."""
from __future__ import annotations

import asyncio
from collections import Counter

from arena_ray.arena.conversation import history, judge_inputs, turn_key
from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import BattlePlan, model_pairs
from arena_ray.arena.progress import tally
from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings
from arena_ray.data.ingest import load_instructions
from arena_ray.judging.prompts import load_template
from arena_ray.records import SamplingSpec
from arena_ray.serving.retry import RetryPolicy
from arena_ray.testing.fakes import EchoEngine, LengthJudge
from tests.helpers import SHARED_DATA

MT_BENCH = load_instructions(SHARED_DATA / "instructions" / "mt_bench.jsonl")
# a writing question (no reference) and a math one (with reference answers), two turns each
CHOSEN = [i for i in MT_BENCH if i.instruction_id in ("81", "111")]
SINGLE, MULTI = load_template("pairwise-v3-fenced"), load_template("pairwise-multiturn-v1")


class Recorder:
    def __init__(self, engine, capacity=4, fail_on=()):
        self.engine, self.capacity, self.fail_on = engine, capacity, set(fail_on)
        self.seen = []

    async def generate(self, request):
        self.seen.append(request)
        if request.request_id in self.fail_on:
            raise ConnectionError("replica died")
        return await self.engine.generate(request)


def scheduler(tmp_path, competitors, judge=None):
    plan = BattlePlan(tuple(i.instruction_id for i in CHOSEN), tuple(model_pairs(list(competitors), "all_pairs")),
                      "judge", SINGLE.version)
    settings = JudgeSettings("judge", SINGLE, SamplingSpec(max_tokens=64), 0.7, 3, 4000, multi_turn=MULTI)
    judge = judge or Recorder(LengthJudge())
    return BattleScheduler(CHOSEN, plan, competitors, judge, settings, RetryPolicy(5.0, 0, 0.0),
                           Ledger(tmp_path), flush_every=2, flush_interval_s=0.05), plan, judge


def test_turns_are_answered_in_order_with_the_conversation_so_far(tmp_path):
    models = {"short": Recorder(EchoEngine(repeat=1)), "long": Recorder(EchoEngine(repeat=3))}
    sched, plan, judge = scheduler(tmp_path, models)
    asyncio.run(sched.run())
    for name, client in models.items():
        by_id = {r.instruction_id: r for r in client.seen}
        assert set(by_id) == {"81#turn1", "81", "111#turn1", "111"}           # one request per turn
        second = by_id["81"].messages
        assert [m.role for m in second] == ["user", "assistant", "user"]
        assert second[0].content == CHOSEN[0].text and second[2].content == CHOSEN[0].turns[0]
        assert second[1].content == " ".join([CHOSEN[0].text] * (1 if name == "short" else 3))  # its own answer
    gens = {(g.instruction_id, g.model) for g in Ledger(tmp_path).generations()}
    assert gens == {(k, m) for k in ("81#turn1", "81", "111#turn1", "111") for m in models}
    prompts = [r.messages[-1].content for r in judge.seen]
    assert len(prompts) == 4 and all("[Turn 1]" in p and "[Turn 2]" in p for p in prompts)
    math = [p for p in prompts if CHOSEN[1].text in p]
    assert len(math) == 2 and all("[The Start of Reference Answers]" in p and CHOSEN[1].references[0] in p
                                  for p in math)
    assert not any("Reference" in p for p in prompts if CHOSEN[0].text in p)
    ledger = Ledger(tmp_path)
    assert {j.prompt_version for j in ledger.judgments()} == {"pairwise-multiturn-v1"}
    t = tally(plan, ledger.judgments(), ledger.generations(), max_attempts=3, disagreement="average",
              tie_margin=0.0, use_weighted=False)
    assert Counter(b.model_a if b.winner == "model_a" else b.model_b for b in t.battles) == {"long": 2}


def test_a_crash_mid_conversation_resumes_from_the_last_answered_turn(tmp_path):
    models = {"short": Recorder(EchoEngine(repeat=1)), "long": Recorder(EchoEngine(repeat=2),
                                                                          fail_on={"gen-long-111"})}
    asyncio.run(scheduler(tmp_path, models)[0].run())        # long's second turn on 111 fails for good
    recorded = {(g.instruction_id, g.model) for g in Ledger(tmp_path).generations()}
    assert ("111#turn1", "long") in recorded and ("111", "long") not in recorded
    again = {"short": Recorder(EchoEngine(repeat=1)), "long": Recorder(EchoEngine(repeat=2))}
    stats = asyncio.run(scheduler(tmp_path, again)[0].run())
    assert [r.instruction_id for r in again["long"].seen] == ["111"]  # only the missing turn is asked
    assert not again["short"].seen and stats.games_done == 2
    assert again["long"].seen[0].messages[1].content == " ".join([CHOSEN[1].text] * 2)  # turn 1 from the ledger


def test_judge_inputs_number_the_turns_and_cut_each_answer():
    math = CHOSEN[1]
    q, a, b, ref = judge_inputs(math, ["x" * 50, "y"], ["z", "w"], cut=10, use_reference=True)
    assert q.startswith("[Turn 1]\n" + math.text) and "[Turn 2]\n" + math.turns[0] in q
    assert a.startswith("[Turn 1]\n" + "x" * 10 + "\n[... answer truncated ...]")
    assert ref.startswith("[Turn 1]\n" + math.references[0])
    assert judge_inputs(math, ["a", "b"], ["c", "d"], cut=10, use_reference=False)[3] is None
    assert turn_key(math, 0) == "111#turn1" and turn_key(math, 1) == "111"
    assert [m.role for m in history(math, [])] == ["user"]


def test_fastchat_turns_and_references_are_read_and_checked(tmp_path):
    import pytest

    from arena_ray.errors import InputError

    math = CHOSEN[1]
    assert len(math.user_turns) == 2 and len(math.references) == 2 and math.category == "math"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1, "turns": ["hi", ""]}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: field 'turns\[1\]' must be a non-empty string"):
        load_instructions(bad)
    bad.write_text('{"question_id": 1, "turns": ["hi"], "reference": ["a", "b"]}\n')
    with pytest.raises(InputError, match="'reference' has 2 answers for 1 turns"):
        load_instructions(bad)
