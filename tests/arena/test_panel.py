"""Judge panels with instant fake judges (no Ray): every member judges every game, a battle is its members'
battles combined (mean scores or majority), resume knows which member still owes a game, and the card lists
each member beside the panel."""
from __future__ import annotations

import asyncio
import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from arena_ray.arena import judge_eval
from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import BattlePlan, model_pairs
from arena_ray.arena.progress import LedgerIndex, remaining, tally
from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings, judge_settings, retry_policy
from arena_ray.judging.combine import combine_panel
from arena_ray.judging.prompts import load_template
from arena_ray.records import Battle, Completion, Instruction, SamplingSpec
from arena_ray.serving.retry import RetryPolicy
from arena_ray.settings import from_dict
from arena_ray.testing.fakes import EchoEngine, LengthJudge
from tests.helpers import tiny_config_dict

TEMPLATE = load_template("pairwise-v3-fenced")
INSTRUCTIONS = [Instruction(f"q{i}", f"question number {i}", "test") for i in range(3)]


class Client:
    def __init__(self, engine, capacity=2):
        self.engine, self.capacity, self.calls = engine, capacity, 0

    async def generate(self, request):
        self.calls += 1
        return await self.engine.generate(request)


class FirstShown:
    """A judge that always prefers the answer shown first: its two orders always disagree."""

    async def generate(self, request):
        return Completion("9 1\nThe first one.", 100, 4, "stop", 0.0)


def battle(winner, a, b, consistent=True):
    return Battle("x", "q", "m", "n", winner, a, b, consistent, "j", "v")


def test_combine_panel_by_mean_or_majority():
    members = [battle("model_a", 8, 4), battle("tie", 5, 5, consistent=False)]
    mean = combine_panel(members, "mean", 0.0)
    assert (mean.winner, mean.score_a, mean.score_b, mean.consistent, mean.judge) == ("model_a", 6.5, 4.5, False, "panel")
    assert combine_panel(members, "majority", 0.0).winner == "tie"          # 1 of 2 is no majority
    three = members + [battle("model_a", 7, 6)]
    assert combine_panel(three, "majority", 0.0).winner == "model_a"
    with pytest.raises(ValueError, match="unknown panel rule"):
        combine_panel(members, "median", 0.0)


def run_panel(tmp_path, rule="mean"):
    competitors = {"short": Client(EchoEngine(repeat=1)), "long": Client(EchoEngine(repeat=3))}
    judges = {"len": Client(LengthJudge()), "first": Client(FirstShown())}
    plan = BattlePlan(tuple(i.instruction_id for i in INSTRUCTIONS), tuple(model_pairs(list(competitors), "all_pairs")),
                      "panel:len+first", TEMPLATE.version)
    js = JudgeSettings("len", TEMPLATE, SamplingSpec(max_tokens=64), 0.7, 3, 4000, panel=("len", "first"))
    sched = BattleScheduler(INSTRUCTIONS, plan, competitors, judges, js, RetryPolicy(5.0, 0, 0.0), Ledger(tmp_path),
                            flush_every=2, flush_interval_s=0.05)
    stats = asyncio.run(sched.run())
    ledger = Ledger(tmp_path)
    result = tally(plan, ledger.judgments(), ledger.generations(), max_attempts=3, disagreement="average",
                   tie_margin=0.0, use_weighted=False, judges=("len", "first"), panel_rule=rule)
    return stats, judges, result, plan


def test_every_member_judges_every_game_and_the_rule_decides(tmp_path):
    stats, judges, result, plan = run_panel(tmp_path)
    assert judges["len"].calls == judges["first"].calls == 2 * len(plan)
    assert set(stats.meters) >= {"judge:len", "judge:first"} and stats.meters["judge:len"].requests == 6
    assert Counter(j.judge for j in Ledger(tmp_path).judgments()) == {"len": 6, "first": 6}
    # len prefers the long answer 8-4 in both orders; first's orders cancel out (5-5): the mean says long
    assert [(b.winner, b.score_a, b.score_b) for b in result.battles] == [("model_a", 6.5, 4.5)] * 3
    assert all(b.model_a == "long" and not b.consistent and b.judge == "panel" for b in result.battles)
    ledger = Ledger(tmp_path)
    majority = tally(plan, ledger.judgments(), ledger.generations(), max_attempts=3, disagreement="average",
                     tie_margin=0.0, use_weighted=False, judges=("len", "first"), panel_rule="majority")
    assert [b.winner for b in majority.battles] == ["tie"] * 3


def test_resume_knows_which_member_still_owes_a_game():
    pb = next(iter(BattlePlan(("q0",), (("a", "b"),), "panel", "v")))
    index = LedgerIndex(judges=("len", "first"))
    index.add_games([pb.battle_id] * 3, [0, 1, 0], [0, 0, 0], [True, True, True], ["len", "len", "first"])
    assert pb.battle_id not in index.judged
    (work,) = remaining(BattlePlan(("q0",), (("a", "b"),), "panel", "v"), index, max_attempts=3)
    assert [(g.judge, g.position) for g in work.games] == [("first", 1)]
    index.add_games([pb.battle_id], [1], [0], [True], ["first"])
    assert pb.battle_id in index.judged and not index.games


def panel_config(tmp_path, **judge):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    data["models"]["tiny-b"] = dict(data["models"]["tiny"])
    data["judge"].update({"panel": ["tiny", "tiny-b"], "card_cache_dir": str(tmp_path / "cards"), **judge})
    return from_dict(data)


def test_a_panel_card_lists_each_member_and_the_panel(tmp_path):
    cfg = panel_config(tmp_path, panel_rule="majority")
    js = judge_settings(cfg, load_template(cfg.judge.prompt))
    card = judge_eval.measure(cfg, js, {"tiny": Client(LengthJudge()), "tiny-b": Client(FirstShown())},
                              retry_policy(cfg), None, 8, tmp_path / "eval", show=False)
    assert set(card["members"]) == {"tiny", "tiny-b"} and card["judge"] == "panel"
    assert card["members"]["tiny"]["position_consistency"] == 1.0
    assert card["members"]["tiny-b"]["position_consistency"] == 0.0      # always the first shown
    rows = pq.read_table(tmp_path / "eval" / "judge_eval.parquet").to_pylist()
    judged = [r for r in rows if r["verdict"] is not None]
    assert card["accuracy"] == round(sum(r["verdict"] == r["human"] for r in judged) / len(judged), 4)
    member = pq.read_table(tmp_path / "eval" / "judge_eval.tiny-b.parquet").to_pylist()
    assert {(r["verdict_ab"], r["verdict_ba"]) for r in member} == {("a", "b")}
    assert "Panel members (combined by majority)" in (tmp_path / "eval" / "judge_card.md").read_text()
    assert json.loads((tmp_path / "cards" / f"{card['fingerprint']}.json").read_text()) == card


@pytest.mark.parametrize("panel,message", [
    (["tiny-b"], "must include judge.model 'tiny'"),
    (["tiny", "nobody"], "unknown model 'nobody'"),
    (["tiny", "tiny"], "named twice"),
    (["tiny", "gpt-4-0314"], "'gpt-4-0314' is a replay model and cannot judge"),
])
def test_a_panel_is_checked_at_load(tmp_path, panel, message):
    from arena_ray.errors import ConfigError

    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    data["models"]["tiny-b"] = dict(data["models"]["tiny"])
    data["judge"]["panel"] = panel
    with pytest.raises((ConfigError, ValueError), match=message):
        from_dict(data)
    cfg = panel_config(tmp_path)
    assert cfg.judges() == ("tiny", "tiny-b") and set(cfg.served_models()) >= {"tiny", "tiny-b"}
