"""The flywheel's pure parts: the stage schedule and the closing table."""
from __future__ import annotations

import math

import pytest

from arena_ray.data.battles import BattleRow
from arena_ray.errors import ConfigError
from arena_ray.rating.matrix import win_rate
from arena_ray.records import Rating
from arena_ray.settings import from_dict
from arena_ray.workflows.flywheel.plan import plan, shards_needed
from arena_ray.workflows.flywheel.summary import iteration_row, to_markdown, version_measures


def test_fresh_shard_per_policy_stage_chains_versions():
    stages = plan("m", 2, ["sft", "dpo"], fresh_shard_per_stage=True)
    assert [(s.method, s.shard, s.battle_model, s.output) for s in stages] == [
        ("sft", 0, "m@0", "m@1-sft"), ("dpo", 1, "m@1-sft", "m@1"),
        ("sft", 2, "m@1", "m@2-sft"), ("dpo", 3, "m@2-sft", "m@2")]
    assert shards_needed(stages) == 4


def test_shared_shard_and_reward_model_stage():
    stages = plan("m", 2, ["rm", "dpo"], fresh_shard_per_stage=False)
    assert [(s.method, s.shard, s.battle_model, s.output) for s in stages] == [
        ("rm", 0, "m@0", "m-rm@1"), ("dpo", 0, "m@0", "m@1"), ("rm", 1, "m@1", "m-rm@2"), ("dpo", 1, "m@1", "m@2")]
    # rm reuses the arena run of the iteration's policy battle: same key, no second arena.
    assert stages[0].battle_key == stages[1].battle_key
    assert shards_needed(stages) == 2


def test_ppo_is_a_policy_stage_and_an_rm_reward_implies_the_rm_stage(tmp_path):
    stages = plan("m", 1, ["sft", "dpo", "ppo"], fresh_shard_per_stage=True)
    assert [(s.method, s.shard, s.battle_model, s.output) for s in stages] == [
        ("sft", 0, "m@0", "m@1-sft"), ("dpo", 1, "m@1-sft", "m@1-dpo"), ("ppo", 2, "m@1-dpo", "m@1")]
    from tests.helpers import tiny_config_dict

    base = tiny_config_dict(tmp_path, tmp_path)
    fw = {"target": "tiny", "competitors": ["gpt-4-0314"], "data": {"sources": [{"path": "x.jsonl"}]},
          "stages": ["sft", "ppo"]}
    judged = from_dict({**base, "flywheel": fw}).flywheel
    assert judged.ppo.reward.source == "pairwise" and judged.all_stages == ("sft", "ppo")
    by_rm = from_dict({**base, "flywheel": {**fw, "ppo": {"reward": {"source": "rm"}}}}).flywheel
    assert by_rm.all_stages == ("sft", "rm", "ppo")
    assert [s.method for s in plan("m", 1, by_rm.all_stages, True)] == ["sft", "rm", "ppo"]
    with pytest.raises(ConfigError, match="lc_reference 'gpt-3.5-turbo-0125' is not one of the competitors"):
        from_dict({**base, "flywheel": {**fw, "lc_reference": "gpt-3.5-turbo-0125"}})


def test_the_strongest_competitor_is_read_from_the_last_eval(tmp_path):
    import json

    from arena_ray.workflows.flywheel.ppo_stage import strongest_competitor
    from tests.helpers import tiny_config_dict

    base = tiny_config_dict(tmp_path, tmp_path)
    fw = {"target": "tiny", "competitors": ["gpt-3.5-turbo-0125", "gpt-4-0314"],
          "data": {"sources": [{"path": "x.jsonl"}]}}
    config = from_dict({**base, "flywheel": fw})
    assert strongest_competitor(tmp_path, config, "tiny@0") == "gpt-3.5-turbo-0125"  # no eval yet: first listed
    board = tmp_path / "eval" / "tiny@0" / "leaderboard.json"
    board.parent.mkdir(parents=True)
    board.write_text(json.dumps({"models": {"gpt-3.5-turbo-0125": {"rating": 990.0}, "gpt-4-0314": {"rating": 1040.0},
                                            "tiny@0": {"rating": 1100.0}}}))
    assert strongest_competitor(tmp_path, config, "tiny@0") == "gpt-4-0314"


def b(a, b_, w):
    return BattleRow(a, b_, w)


def test_win_rate_counts_ties_half_and_either_side():
    battles = [b("x", "y", "model_a"), b("y", "x", "model_a"), b("x", "y", "tie"), b("x", "z", "model_a")]
    assert win_rate(battles, "x", "y") == (0.5, 3)
    assert win_rate(battles, "y", "x") == (0.5, 3)
    rate, games = win_rate(battles, "x", "nobody")
    assert games == 0 and math.isnan(rate)


def test_table_has_a_row_per_stage_and_marks_skips():
    rows = [iteration_row(0, "m@0", [], Rating("m@0", 990.0, 950.0, 1030.0, 4), [b("m@0", "g", "model_b")], ["g"]),
            iteration_row(1, "m@1", [{"method": "sft", "battles": 4, "sft": 3, "dpo": 4, "rm": 4, "loss_first": 2.0,
                                      "loss_last": 1.5}, {"method": "dpo", "battles": 4, "sft": 0, "dpo": 0, "rm": 0,
                                                          "skipped": "no dpo examples"},
                                     {"method": "ppo", "battles": 2, "reward_first": -0.25, "reward_last": 0.5}],
                          Rating("m@1", 1010.0, 970.0, 1050.0, 4), [b("m@1", "g", "model_a")], ["g"])]
    md = to_markdown(rows, ["g"])
    assert "| 0 | m@0 | base |" in md and "990 (950–1030)" in md and "| 0.00 |" in md
    line = next(x for x in md.splitlines() if x.startswith("| 1 | m@1 |"))
    assert line.startswith("| 1 | m@1 | sft | 4 | 3 | 4 | 4 | 2.000→1.500 | 1010 (970–1050) |") and \
        line.endswith("| 1.00 |")
    assert "| dpo | 4 | 0 | 0 | 0 | skipped: no data |" in md
    assert "| ppo | 2 | – | – | – | reward -0.250→0.500 |" in md


def test_rows_carry_the_head_to_head_the_lc_win_rate_and_the_answers_length():
    def battle(q, a, b_, w, ta, tb, sa, sb):
        return BattleRow(a, b_, w, q, ta, tb, fields=(("score_a", sa), ("score_b", sb)))

    battles = [battle(f"q{k}", "m@1", "m@0", "model_a" if k % 3 else "tie", "x" * (40 + k), "y" * 30, 8.0, 6.0)
               for k in range(6)]
    battles += [battle(f"q{k}", "ref", "m@1", "model_b" if k < 4 else "model_a", "r" * (50 + 9 * k), "x" * (40 + k),
                       5.0, 7.0) for k in range(6)]
    row = iteration_row(1, "m@1", [], None, battles, ["ref"], base="m@0", lc_reference="ref", seed=0)
    assert row["head_to_head"]["wins"] == 4 and row["head_to_head"]["ties"] == 2
    assert row["head_to_head"]["win_rate"] == pytest.approx(5 / 6, abs=1e-4)
    lo, hi = row["head_to_head"]["ci"]
    assert lo <= 5 / 6 <= hi < 1.0 + 1e-9
    assert row["raw_win_rate"] == pytest.approx(4 / 6, abs=1e-4) and 0.0 <= row["lc_win_rate"] <= 1.0
    assert row["mean_length"] == pytest.approx(42.5)   # one answer per question, not one per battle
    assert row["judge_score"] == pytest.approx((6 * 8.0 + 6 * 7.0) / 12)
    md = to_markdown([row], ["ref"])
    assert "LC win vs ref" in md and "0.83 (" in md and ") 4/2/0 |" in md and "| 42 |" in md


def test_flywheel_config_is_validated(tmp_path):
    from tests.helpers import tiny_config_dict

    base = tiny_config_dict(tmp_path, tmp_path)
    fw = {"target": "tiny", "competitors": ["gpt-4-0314"], "data": {"sources": [{"path": "x.jsonl"}]}}
    assert from_dict({**base, "flywheel": fw}).flywheel.stages == ("sft", "dpo")
    with pytest.raises(ConfigError, match="flywheel: unknown model 'nope'"):
        from_dict({**base, "flywheel": {**fw, "competitors": ["nope"]}})
    with pytest.raises(ConfigError, match="must be a vllm model"):
        from_dict({**base, "flywheel": {**fw, "target": "gpt-3.5-turbo-0125"}})
    with pytest.raises(ConfigError, match="stages has duplicates"):
        from_dict({**base, "flywheel": {**fw, "stages": ["sft", "sft"]}})
    with pytest.raises(ConfigError, match="at least one policy stage"):
        from_dict({**base, "flywheel": {**fw, "stages": ["rm"]}})
    with pytest.raises(ConfigError, match="bf16 needs use_gpu"):
        from_dict({**base, "flywheel": {**fw, "train": {"sft": {"bf16": True}}}})


def test_every_stage_version_gets_its_own_line_with_its_measures():
    battles = [b("m@1-sft", "g", "model_a"), b("m@1", "g", "model_b"), b("m@1", "m@0", "model_a"),
               b("m@1-sft", "m@0", "tie")]
    sft = version_measures("m@1-sft", Rating("m@1-sft", 1005.0, 990.0, 1020.0, 2), battles, ["g"], base="m@0")
    row = {"iteration": 1, "version": "m@1", "stages": [
        {"method": "sft", "battles": 2, "version": "m@1-sft", "measures": sft},
        {"method": "rm", "battles": 2, "version": "m-rm@1", "measures": None},
        {"method": "dpo", "battles": 2, "version": "m@1", "measures": None}],
        **version_measures("m@1", Rating("m@1", 995.0, 980.0, 1010.0, 2), battles, ["g"], base="m@0")}
    lines = to_markdown([row], ["g"]).splitlines()[2:]
    assert lines[0].startswith("| 1 | m@1-sft | sft |") and "1005 (990–1020)" in lines[0]
    assert "0.50 (0.50–0.50) 0/1/0" in lines[0] and lines[0].endswith("| 1.00 |")
    assert lines[1].startswith("|  | m-rm@1 | rm |") and lines[1].endswith("| – | – | – | – | – | – |")
    assert lines[2].startswith("|  | m@1 | dpo |") and "995 (980–1010)" in lines[2] and lines[2].endswith("| 0.00 |")
