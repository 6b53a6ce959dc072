"""The `flywheel:` section: which model to improve, against whom, on which data, for how long."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.data import DataSpec
from arena_ray.settings.models import ModelConfig
from arena_ray.settings.ppo import PPORecipe, RewardConfig
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
    stages: tuple[Literal["sft", "dpo", "rm", "ppo"], ...] = ("sft", "dpo")
    """Training stages of each iteration, in order. sft, dpo and ppo each produce the next policy; rm trains a
    reward model on the iteration's battles and leaves the policy as it is (implied before ppo when
    ppo.reward.source is rm)."""
    fresh_shard_per_stage: bool = True
    """Each policy stage battles on a fresh shard (the paper: SFT on D_i, then DPO on D_i+1 with the SFT model)."""
    instructions_per_shard: Optional[int] = Field(None, ge=1)
    """Cap of instructions battled per shard (laptop budgets); null: the whole shard."""
    focus: Literal["none", "weakest"] = "none"
    """weakest: from iteration 2 on, each stage battles its shard's instructions of the categories the target did
    worst in during the previous iteration first (Arena Learning's targeted iterations), up to
    instructions_per_shard (null: half the shard); none: the shard in order."""
    focus_by: Literal["category", "coding", "prompt_length", "language"] = "category"
    """An instruction's category for focus: its own (an arena-hard topic cluster, an MT-bench category) or one
    derived from its text (coding, prompt_length, language)."""
    data: DataSpec
    """The instruction pipeline that makes the shards and the holdout."""
    eval_instructions: Optional[str] = None
    """The offline test set every version is rated on; null: the data step's holdout."""
    eval_limit: Optional[int] = Field(None, ge=1)
    """Cap of eval instructions; null: all."""
    eval_every_stage: bool = True
    """Rate every stage's version on the test set (WizardArena reports the SFT, DPO and PPO models of each
    iteration), not only the iteration's last; the next stage's battles reuse its served model."""
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    """Judge-score gaps that make battles into training data."""
    train: TrainSettings = Field(default_factory=TrainSettings)
    """Training recipes per stage."""
    ppo: PPORecipe = Field(default_factory=lambda: PPORecipe(reward=RewardConfig(source="pairwise")))
    """The ppo stage's recipe (the learner of `arena-ray ppo`): prompts are the stage's fresh shard, rollouts
    come from the input version's deployment. reward.source pairwise: the judge compares each sample with the
    strongest competitor's answer from the stage's battles; rm: the iteration's reward model."""
    lc_reference: Optional[str] = None
    """The competitor whose eval answers the length-controlled win rate is measured against; null: the first
    competitor."""
    max_length_growth: float = Field(1.5, gt=1)
    """Reward-hacking guard: a version whose mean eval answer length grew by more than this factor over @0
    while its length-controlled win rate did not rise gets a warning."""
    stop_on_hacking: bool = False
    """Stop the loop (after the iteration's summary is written) when the guard fires."""
    version_overrides: dict[str, object] = Field(default_factory=dict)
    """Merged into the target's model entry for every trained version (e.g. bind its engine to another core than
    the judge's when both are the same base model on a laptop)."""

    @property
    def all_stages(self) -> tuple[str, ...]:
        """The stages as run: rm is implied before ppo when ppo's reward is a reward model."""
        if "ppo" in self.stages and self.ppo.reward.source == "rm" and "rm" not in self.stages:
            at = self.stages.index("ppo")
            return (*self.stages[:at], "rm", *self.stages[at:])
        return self.stages

    @model_validator(mode="after")
    def _stages(self) -> "FlywheelConfig":
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages has duplicates: {list(self.stages)}")
        if not any(s in ("sft", "dpo", "ppo") for s in self.stages):
            raise ValueError("stages needs at least one policy stage (sft, dpo or ppo)")
        if self.lc_reference is not None and self.lc_reference not in self.competitors:
            raise ValueError(f"lc_reference '{self.lc_reference}' is not one of the competitors "
                             f"{list(self.competitors)}")
        if self.target in self.competitors:
            raise ValueError(f"competitors must not include the target '{self.target}'")
        unknown = sorted(set(self.version_overrides) - set(ModelConfig.model_fields))
        if unknown:
            raise ValueError(f"version_overrides: {unknown} are not model settings (see models.* in "
                             "configs/reference.yaml)")
        return self
