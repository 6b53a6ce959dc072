"""The flywheel's defined outcomes for bad input, without a cluster: a missing or empty shard stops with the
file named; thresholds that leave no data skip the training stage (the version carries on unchanged, the
registry says so) and a re-run does not train it again."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_ray.errors import InputError
from arena_ray.settings import from_dict
from arena_ray.train.registry import Registry
from arena_ray.workflows.flywheel import stages as st
from arena_ray.workflows.flywheel.plan import plan
from tests.helpers import ARENA_HARD, tiny_config_dict


def test_missing_and_empty_shards_are_named(tmp_path):
    with pytest.raises(InputError, match=r"shard D3 does not exist.*flywheel.data.split.shards"):
        st.shard_path(tmp_path, 3)
    (tmp_path / "data" / "shards").mkdir(parents=True)
    pq.write_table(pa.table({"instruction_id": pa.array([], pa.string()), "text": pa.array([], pa.string()),
                             "source": pa.array([], pa.string())}), tmp_path / "data" / "shards" / "D0.parquet")
    with pytest.raises(InputError, match="D0.parquet: no instructions"):
        st.shard_path(tmp_path, 0)


def test_no_data_skips_the_stage_and_the_version_carries_on(tmp_path, tiny_model_dir, caplog):
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["flywheel"] = {"dir": str(tmp_path / "fw"), "target": "tiny", "competitors": ["gpt-4-0314"],
                        "data": {"sources": [{"path": str(ARENA_HARD)}]}}
    config = from_dict(data)
    root = tmp_path / "fw"
    registry = Registry(root)
    registry.register("tiny@0", tiny_model_dir, parent=None, stage="base", iteration=0)
    stage = plan("tiny", 1, ["sft", "dpo"], True)[0]
    curated = root / stage.name / "curated"
    curated.mkdir(parents=True)
    pq.write_table(pa.table({"messages": pa.array([], pa.list_(pa.struct([("role", pa.string()),
                                                                          ("content", pa.string())])))}),
                   curated / "sft.parquet")

    result = st.train_stage(config, root, registry, stage)
    assert "no sft examples" in result["skipped"] and result["metrics"] == {}
    assert "sft skipped" in caplog.text
    entry = registry.get(stage.output)
    assert entry.path == str(tiny_model_dir) and entry.digest == registry.get("tiny@0").digest
    marker = root / stage.name / "train" / "done.json"
    stamp = marker.stat().st_mtime_ns
    assert st.train_stage(config, root, registry, stage) == json.loads(marker.read_text())
    assert marker.stat().st_mtime_ns == stamp  # finished stages are not run again
