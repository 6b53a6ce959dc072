"""The `flywheel:` section: which model to improve, against whom, on which data, for how long."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.data import DataSpec
from arena_ray.settings.models import ModelConfig
from arena_ray.settings.train import TrainSettings


class ThresholdsConfig(Strict):
    sft_gap: float = Field(3.0, ge=0)
    """SFT on battles the target lost by at least this judge-score gap (the paper's best: 3.0)."""
    dpo_gap: float = Field(2.0, ge=0)
    """DPO pairs from the target's battles with at least this gap."""
    rm_gap: float = Field(2.0, ge=0)
    """Reward-model pairs from any battle with at least this gap."""


class FlywheelConfig(Strict):
    dir: str = "runs/flywheel"
    """Directory of the whole loop (data, battles, models, registry, summary)."""
    target: str
    """The model to improve: a vllm entry of `models`; its path is version @0."""
    competitors: tuple[str, ...] = Field(min_length=1)
    """Whom each version battles on the training shards (the strongest competitors) and on the eval set."""
    iterations: int = Field(2, ge=1)
    """Iterations of the loop."""
    stages: tuple[Literal["sft", "dpo", "rm"], ...] = ("sft", "dpo")
    """Training stages of each iteration, in order. sft and dpo each produce the next policy; rm trains a reward
    model on the iteration's battles (for PPO) and leaves the policy as it is."""
    fresh_shard_per_stage: bool = True
    """Each policy stage battles on a fresh shard (the paper: SFT on D_i, then DPO on D_i+1 with the SFT model)."""
    instructions_per_shard: Optional[int] = Field(None, ge=1)
    """Cap of instructions battled per shard (laptop budgets); null: the whole shard."""
    data: DataSpec
    """The instruction pipeline that makes the shards and the holdout."""
    eval_instructions: Optional[str] = None
    """The offline test set every version is rated on; null: the data step's holdout."""
    eval_limit: Optional[int] = Field(None, ge=1)
    """Cap of eval instructions; null: all."""
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    """Judge-score gaps that make battles into training data."""
    train: TrainSettings = Field(default_factory=TrainSettings)
    """Training recipes per stage."""
    version_overrides: dict[str, object] = Field(default_factory=dict)
    """Merged into the target's model entry for every trained version (e.g. bind its engine to another core than
    the judge's when both are the same base model on a laptop)."""

    @model_validator(mode="after")
    def _stages(self) -> "FlywheelConfig":
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages has duplicates: {list(self.stages)}")
        if not any(s in ("sft", "dpo") for s in self.stages):
            raise ValueError("stages needs at least one policy stage (sft or dpo)")
        if self.target in self.competitors:
            raise ValueError(f"competitors must not include the target '{self.target}'")
        unknown = sorted(set(self.version_overrides) - set(ModelConfig.model_fields))
        if unknown:
            raise ValueError(f"version_overrides: {unknown} are not model settings (see models.* in "
                             "configs/reference.yaml)")
        return self
