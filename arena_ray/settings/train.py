"""Training recipes (SFT, DPO, reward model): the Hugging Face/TRL arguments exposed, Ray Train scaling and an
optional DeepSpeed config. Defaults follow TRL's per method."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict

Method = Literal["sft", "dpo", "rm"]


class TrainConfig(Strict):
    learning_rate: float = Field(2e-5, gt=0)
    """Peak learning rate."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the data."""
    max_steps: int = Field(-1, ge=-1)
    """> 0 caps the optimiser steps (overrides epochs), as transformers' max_steps."""
    per_device_batch_size: int = Field(2, ge=1)
    """Examples per worker and step."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Micro-batches per optimiser step."""
    max_length: int = Field(1024, ge=16)
    """Tokens per example (prompt + answer)."""
    warmup: float = Field(0.0, ge=0)
    """Linear warm-up: an integer is a number of steps, a float in [0, 1) a fraction of all steps."""
    lr_scheduler_type: str = "linear"
    """transformers' scheduler name."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    logging_steps: int = Field(1, ge=1)
    """Log (and export metrics) every this many steps."""
    seed: int = 0
    """Training seed."""
    beta: float = Field(0.1, gt=0)
    """DPO: the KL strength."""
    loss_type: str = "sigmoid"
    """DPO loss (TRL names: sigmoid, ipo, hinge, robust, ...)."""
    num_workers: int = Field(1, ge=1)
    """Ray Train workers (one process each; DDP over gloo on CPU, NCCL on GPUs)."""
    use_gpu: bool = False
    """One GPU per worker."""
    cpus_per_worker: float = Field(1, gt=0)
    """CPUs each worker reserves."""
    worker_resources: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources each worker also reserves: pins the workers to the nodes that have them (a node
    started with `ray start --resources '{"trainer": 8}'`, a KubeRay group's rayStartParams)."""
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    """How Ray Train places the workers' bundles: PACK (as few nodes as fit), SPREAD, STRICT_SPREAD (one node
    each: data parallelism across nodes)."""
    bf16: bool = False
    """bfloat16 mixed precision (GPU only)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory)."""
    deepspeed: Optional[str] = None
    """A DeepSpeed JSON (configs/deepspeed/zero2.json, zero3.json) handed to transformers; null: plain DDP."""

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
    """Supervised fine-tuning on the winners' answers."""
    dpo: TrainConfig = Field(default_factory=_dpo)
    """DPO on (winner, loser) pairs."""
    rm: TrainConfig = Field(default_factory=_rm)
    """Reward model on (winner, loser) pairs."""

    def of(self, method: Method) -> TrainConfig:
        return getattr(self, method)
