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
from arena_ray.workflows.flywheel.summary import iteration_row, to_markdown


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
                                                          "skipped": "no dpo examples"}],
                          Rating("m@1", 1010.0, 970.0, 1050.0, 4), [b("m@1", "g", "model_a")], ["g"])]
    md = to_markdown(rows, ["g"])
    assert "| 0 | m@0 | base |" in md and "990 (950–1030)" in md and "| 0.00 |" in md
    assert "| 1 | m@1 | sft | 4 | 3 | 4 | 4 | 2.000→1.500 | 1010 (970–1050) | 1.00 |" in md
    assert "| dpo | 4 | 0 | 0 | 0 | skipped: no data |" in md


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
