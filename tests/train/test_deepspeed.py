"""The DeepSpeed path of the recipes: ZeRO-2 runs on CPU over gloo with two Ray Train workers (DeepSpeed's CPU
accelerator); ZeRO-3 with bf16 needs GPUs and is marked `gpu`."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_ray.settings.train import TrainConfig
from arena_ray.train.run import train
from tests.conftest import ROOT

ZERO2, ZERO3 = ROOT / "configs" / "deepspeed" / "zero2.json", ROOT / "configs" / "deepspeed" / "zero3.json"


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "sft.parquet"
    rows = [{"messages": [{"role": "user", "content": f"Spell the number {i} in words."},
                          {"role": "assistant", "content": f"The number {i} is written out in words."}]}
            for i in range(16)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.slow
def test_zero2_on_two_cpu_workers(local_ray, tiny_model_dir, sft_file, tmp_path):
    result = train("sft", tiny_model_dir, sft_file, tmp_path / "zero2",
                   TrainConfig(learning_rate=1e-3, max_steps=6, per_device_batch_size=2, num_workers=2,
                               cpus_per_worker=1, deepspeed=str(ZERO2), lr_scheduler_type="constant"))
    assert result.metrics["steps"] == 6
    assert result.metrics["loss_last"] < result.metrics["loss_first"]
    assert (result.path / "model.safetensors").exists() and not (result.path / "training_args.bin").exists()


@pytest.mark.gpu
def test_zero3_bf16_on_gpus(local_ray, tiny_model_dir, sft_file, tmp_path):
    result = train("sft", tiny_model_dir, sft_file, tmp_path / "zero3",
                   TrainConfig(learning_rate=1e-3, max_steps=6, per_device_batch_size=2, num_workers=1,
                               use_gpu=True, bf16=True, deepspeed=str(ZERO3), lr_scheduler_type="constant"))
    assert result.metrics["loss_last"] < result.metrics["loss_first"]
    assert (result.path / "model.safetensors").exists()
