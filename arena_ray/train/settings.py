"""Training recipe config (SFT, DPO, reward model): the Hugging Face/TRL arguments we expose, Ray Train scaling,
and the optional DeepSpeed config file. Defaults follow TRL's per method."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.strict import Strict

Method = Literal["sft", "dpo", "rm"]


class TrainConfig(Strict):
    learning_rate: float = Field(2e-5, gt=0)
    epochs: float = Field(1.0, gt=0)
    # > 0 caps the optimiser steps (overrides epochs), as in transformers' max_steps.
    max_steps: int = Field(-1, ge=-1)
    per_device_batch_size: int = Field(2, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=16)
    # Linear warm-up: an integer is a number of steps, a float in [0, 1) a fraction of all steps.
    warmup: float = Field(0.0, ge=0)
    lr_scheduler_type: str = "linear"
    weight_decay: float = Field(0.0, ge=0)
    logging_steps: int = Field(1, ge=1)
    seed: int = 0
    # DPO: the KL strength and loss (TRL names: sigmoid, ipo, hinge, robust, …).
    beta: float = Field(0.1, gt=0)
    loss_type: str = "sigmoid"
    # Ray Train: workers (one process each; DDP over gloo on CPU, NCCL on GPUs) and resources per worker.
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1, gt=0)
    bf16: bool = False
    gradient_checkpointing: bool = False
    # A DeepSpeed JSON (configs/deepspeed/zero2.json, zero3.json) handed to transformers; None: plain DDP.
    deepspeed: Optional[str] = None

    @model_validator(mode="after")
    def _gpu_options(self) -> "TrainConfig":
        if self.bf16 and not self.use_gpu:
            raise ValueError("bf16 needs use_gpu: true (CPU training runs in fp32)")
        return self


def _sft() -> TrainConfig:
    return TrainConfig(learning_rate=2e-5)


def _dpo() -> TrainConfig:
    return TrainConfig(learning_rate=5e-7)


def _rm() -> TrainConfig:
    return TrainConfig(learning_rate=1e-5)


class TrainSettings(Strict):
    sft: TrainConfig = Field(default_factory=_sft)
    dpo: TrainConfig = Field(default_factory=_dpo)
    rm: TrainConfig = Field(default_factory=_rm)

    def of(self, method: Method) -> TrainConfig:
        return getattr(self, method)
