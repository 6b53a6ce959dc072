"""Self-rewarding's defined outcomes without a cluster: an empty prompt slice stops before anything runs,
naming the file; an all-ties iteration (no pairs) skips DPO and M_t carries on as M_{t-1}."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from arena_ray.errors import InputError
from arena_ray.settings import from_dict
from arena_ray.train.registry import Registry
from arena_ray.workflows.kit import train_version
from arena_ray.workflows.selfreward.loop import PAIR_SCHEMA, iteration_prompts
from tests.conftest import SHARED_DATA
from tests.helpers import tiny_config_dict

PROMPTS = SHARED_DATA / "instructions" / "vicuna_bench.jsonl"   # 80 prompts


def config(tmp_path, tiny_model_dir, **sr):
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["self_reward"] = {"dir": str(tmp_path / "sr"), "model": "tiny", **sr}
    return from_dict(data)


def test_prompts_are_fresh_per_iteration_and_an_empty_slice_is_an_error(tmp_path, tiny_model_dir):
    c = config(tmp_path, tiny_model_dir, iterations=2, prompts={"path": str(PROMPTS), "per_iteration": 30})
    first, second = iteration_prompts(c.self_reward)
    assert len(first) == len(second) == 30 and not {p.instruction_id for p in first} & {p.instruction_id for p in second}
    c = config(tmp_path, tiny_model_dir, iterations=3, prompts={"path": str(PROMPTS), "per_iteration": 40})
    with pytest.raises(InputError, match=r"vicuna_bench.jsonl: no prompts left for iteration 3"):
        iteration_prompts(c.self_reward)


def test_all_ties_iteration_skips_dpo(tmp_path, tiny_model_dir, caplog):
    c = config(tmp_path, tiny_model_dir)
    root = tmp_path / "sr"
    registry = Registry(root)
    registry.register("tiny@0", tiny_model_dir, parent=None, stage="base", iteration=0)
    it = root / "iter1"
    (it / "selfjudge").mkdir(parents=True)
    pq.write_table(PAIR_SCHEMA.empty_table(), it / "selfjudge" / "dpo.parquet")
    result = train_version(c, registry, method="dpo", base="tiny@0", output="tiny@1",
                           data=it / "selfjudge" / "dpo.parquet", stage_dir=it, settings=c.self_reward.train,
                           iteration=1, model="tiny", storage=root / "ray_train")
    assert "no dpo examples" in result["skipped"] and "dpo skipped" in caplog.text
    assert registry.get("tiny@1").digest == registry.get("tiny@0").digest
