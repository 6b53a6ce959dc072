"""The checkpoint registry: safetensors only, missing shards named, idempotent registration, crash-safe file."""
from __future__ import annotations

import json

import pytest

from arena_ray.errors import TrainingError
from arena_ray.train.registry import Registry, weight_files


def checkpoint(path, weights=b"abc", sharded=False):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if sharded:
        (path / "model.safetensors.index.json").write_text(json.dumps(
            {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
        (path / "model-00001-of-00002.safetensors").write_bytes(weights)
    else:
        (path / "model.safetensors").write_bytes(weights)
    return path


def test_missing_shard_and_pickle_files_are_named(tmp_path):
    sharded = checkpoint(tmp_path / "s", sharded=True)
    with pytest.raises(TrainingError, match=r"shard\(s\) \['model-00002-of-00002.safetensors'\] .* missing"):
        weight_files(sharded)
    pickled = checkpoint(tmp_path / "p")
    (pickled / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(TrainingError, match="pickle-based weight files"):
        weight_files(pickled)
    with pytest.raises(TrainingError, match="no config.json"):
        weight_files(tmp_path)


def test_register_is_idempotent_and_refuses_other_weights(tmp_path):
    reg = Registry(tmp_path)
    a = reg.register("m@0", checkpoint(tmp_path / "a"), parent=None, stage="base", iteration=0)
    assert reg.register("m@0", tmp_path / "a", parent=None, stage="base", iteration=0) == a
    b = reg.register("m@1", checkpoint(tmp_path / "b", b"xyz"), parent="m@0", stage="sft", iteration=1,
                     metrics={"loss_last": 1.0})
    assert (a.version, b.version) == (0, 1) and reg.get("m@1").metrics == {"loss_last": 1.0}
    with pytest.raises(TrainingError, match="registered with other weights"):
        reg.register("m@1", tmp_path / "a", parent="m@0", stage="sft", iteration=1)


def test_a_half_written_last_line_is_dropped(tmp_path):
    reg = Registry(tmp_path)
    reg.register("m@0", checkpoint(tmp_path / "a"), parent=None, stage="base", iteration=0)
    with reg.path.open("a") as fh:
        fh.write('{"name": "m@1", "vers')          # the crash
    assert [v.name for v in reg.versions()] == ["m@0"]
    reg.register("m@1", checkpoint(tmp_path / "b", b"q"), parent="m@0", stage="sft", iteration=1)
    assert [v.name for v in reg.versions()] == ["m@0", "m@1"]
