"""The `flywheel:` section of a config: which model to improve, against whom, on which data, for how long."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.data.settings import DataSpec
from arena_ray.strict import Strict
from arena_ray.train.settings import TrainSettings


class ThresholdsConfig(Strict):
    # The paper's best iteration-1 settings: SFT on losses by >= 3.0 points, DPO pairs with a gap >= 2.0.
    sft_gap: float = Field(3.0, ge=0)
    dpo_gap: float = Field(2.0, ge=0)
    rm_gap: float = Field(2.0, ge=0)


class FlywheelConfig(Strict):
    dir: str = "runs/flywheel"
    # The model to improve: a vllm model of `models`; its path is version @0.
    target: str
    # Whom each version battles on the training shards (the strongest competitors), and on the eval set.
    competitors: tuple[str, ...] = Field(min_length=1)
    iterations: int = Field(2, ge=1)
    # Training stages of each iteration, in order. sft and dpo each produce the next policy; rm trains a
    # reward model on the iteration's battles (for PPO) and leaves the policy as it is.
    stages: tuple[Literal["sft", "dpo", "rm"], ...] = ("sft", "dpo")
    # Each policy stage battles on a fresh shard (the paper: SFT on D_i, then DPO on D_i+1 with the SFT model).
    fresh_shard_per_stage: bool = True
    instructions_per_shard: Optional[int] = Field(None, ge=1)   # cap, for laptop budgets
    data: DataSpec
    # The offline test set every version is rated on; None: the data step's holdout.
    eval_instructions: Optional[str] = None
    eval_limit: Optional[int] = Field(None, ge=1)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    train: TrainSettings = Field(default_factory=TrainSettings)
    # Merged into the target's model entry for every trained version (e.g. bind its engine to another core
    # than the judge's when both are the same base model on a laptop).
    version_overrides: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _stages(self) -> "FlywheelConfig":
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages has duplicates: {list(self.stages)}")
        if not any(s in ("sft", "dpo") for s in self.stages):
            raise ValueError("stages needs at least one policy stage (sft or dpo)")
        if self.target in self.competitors:
            raise ValueError(f"competitors must not include the target '{self.target}'")
        return self
