"""SFT, DPO and reward-model recipes: TRL trainers inside Ray Train's TorchTrainer on a real local Ray, training
a tiny random model on real answers (arena-hard: GPT-4 answers chosen over GPT-3.5's)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import load_file

from arena_ray.data.answers import load_answers
from arena_ray.data.ingest import load_instructions
from arena_ray.settings.train import TrainConfig
from arena_ray.train import run
from arena_ray.train.formats import preference_messages, rows_for
from arena_ray.train.registry import Registry, weight_files
from arena_ray.train.run import NoTrainingData, train
from arena_ray.train.worker import shard_rows
from tests.helpers import ANSWERS, ARENA_HARD

pytestmark = pytest.mark.slow

FAST = dict(max_steps=12, per_device_batch_size=4, max_length=160, logging_steps=1, lr_scheduler_type="constant",
            cpus_per_worker=2)


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """Curated files in the shape `arena-ray curate` writes, from 8 real arena-hard prompts."""
    out = tmp_path_factory.mktemp("curated")
    prompts = [p for p in load_instructions(ARENA_HARD) if len(p.text) < 200][:8]
    good, bad = load_answers(ANSWERS / "gpt-4-0314.jsonl"), load_answers(ANSWERS / "gpt-3.5-turbo-0125.jsonl")
    pq.write_table(pa.Table.from_pylist([
        {"messages": [{"role": "user", "content": p.text}, {"role": "assistant", "content": good[p.instruction_id]}],
         "instruction_id": p.instruction_id} for p in prompts]), out / "sft.parquet")
    pairs = [{**preference_messages(p.text, good[p.instruction_id], bad[p.instruction_id]),
              "instruction_id": p.instruction_id} for p in prompts]
    pq.write_table(pa.Table.from_pylist(pairs), out / "dpo.parquet")
    pq.write_table(pa.Table.from_pylist(pairs[:0], schema=pq.read_schema(out / "dpo.parquet")), out / "empty.parquet")
    return out


def changed(before, after) -> bool:
    a, b = load_file(str(weight_files(before)[0])), load_file(str(weight_files(after)[0]))
    return any(not (a[k] == b[k]).all() for k in a if k in b)


def test_sft_lowers_loss_and_changes_weights(local_ray, tiny_model_dir, curated, tmp_path, monkeypatch):
    result = train("sft", tiny_model_dir, curated / "sft.parquet", tmp_path / "sft",
                   TrainConfig(learning_rate=1e-3, **FAST))
    m = result.metrics
    assert m["steps"] == 12 and m["examples"] == 8
    assert m["loss_last"] < m["loss_first"]
    assert changed(tiny_model_dir, result.path)
    assert (result.path / "tokenizer_config.json").exists() and json.loads((result.path / "metrics.json").read_text()) == m
    entry = Registry(tmp_path).register("tiny@1", result.path, parent="tiny@0", stage="sft", iteration=1, metrics=m)
    assert entry.version == 0 and Registry(tmp_path).get("tiny@1").digest == entry.digest
    # A second call finds the finished folder and does not train again.
    assert train("sft", tiny_model_dir, curated / "sft.parquet", tmp_path / "sft", TrainConfig(**FAST)).metrics == m
    # Either way the data reaches the workers (put by the driver; a large file read by Ray Data's tasks), a worker
    # gets the rows the driver checked, in order.
    checked = [row for rows in run.read_examples("sft", curated / "sft.parquet", None) for row in rows]
    for limit in (run.DRIVER_READ_BYTES, 0):
        monkeypatch.setattr(run, "DRIVER_READ_BYTES", limit)
        shard = run.curated_dataset(curated / "sft.parquet").iterator()
        assert rows_for("sft", shard_rows(shard), "sft.parquet") == checked


def test_dpo_grows_the_implicit_reward_margin(local_ray, tiny_model_dir, curated, tmp_path):
    result = train("dpo", tiny_model_dir, curated / "dpo.parquet", tmp_path / "dpo",
                   TrainConfig(learning_rate=5e-4, beta=0.1, **FAST))
    m = result.metrics
    assert m["loss_last"] < m["loss_first"]
    assert m["margin_last"] > m["margin_first"]
    assert changed(tiny_model_dir, result.path)


def test_reward_model_learns_the_preference(local_ray, tiny_model_dir, curated, tmp_path):
    result = train("rm", tiny_model_dir, curated / "dpo.parquet", tmp_path / "rm",
                   TrainConfig(learning_rate=5e-4, **{**FAST, "max_length": 1200}))
    m = result.metrics
    assert m["loss_last"] < m["loss_first"]
    assert json.loads((result.path / "config.json").read_text())["architectures"] == ["LlamaForSequenceClassification"]


def test_empty_data_is_a_defined_outcome(tiny_model_dir, curated, tmp_path):
    with pytest.raises(NoTrainingData, match="empty.parquet: no dpo examples"):
        train("dpo", tiny_model_dir, curated / "empty.parquet", tmp_path / "x", TrainConfig(**FAST))
    assert not (tmp_path / "x").exists()
    with pytest.raises(NoTrainingData, match="prompts of >= max_length"):
        train("dpo", tiny_model_dir, curated / "dpo.parquet", tmp_path / "x", TrainConfig(**{**FAST, "max_length": 16}))
