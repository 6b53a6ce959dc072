"""The `self_reward:` section of a config (Self-Rewarding LMs, Yuan et al. 2024): the defaults are the paper's."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from arena_ray.strict import InstructionFormat, Strict
from arena_ray.train.settings import TrainConfig


def _dpo() -> TrainConfig:
    return TrainConfig(learning_rate=1e-6, beta=0.1)


def _sft() -> TrainConfig:
    return TrainConfig(learning_rate=5.5e-6)


class PromptsConfig(Strict):
    path: str = "../shared/data/instructions/self_instruct_user_oriented.jsonl"
    format: InstructionFormat = "auto"
    # Iteration t takes the next `per_iteration` prompts of the file (fresh prompts every iteration).
    per_iteration: int = Field(64, ge=1)
    offset: int = Field(0, ge=0)


class AgreementConfig(Strict):
    """Judge quality against human labels on held-out preference data (PandaLM's test set format)."""

    path: Optional[str] = "../shared/data/preferences/pandalm_testset.json"
    offset: int = Field(0, ge=0)
    limit: Optional[int] = Field(100, ge=1)


class SeedConfig(Strict):
    """Optional seed stage before the first iteration: SFT on instruction-following data (IFT: instructions
    with reference answers) plus evaluation-fine-tuning data (EFT: the model's own rubric judgments of
    human-ranked pairs, kept where their order agrees with the human label)."""

    ift_instructions: Optional[str] = None
    ift_answers: Optional[str] = None       # a recorded answers file (arena-hard / FastChat layout)
    ift_limit: Optional[int] = Field(None, ge=1)
    eft_path: Optional[str] = None           # human-ranked pairs (PandaLM format), disjoint from agreement
    eft_offset: int = Field(0, ge=0)
    eft_limit: Optional[int] = Field(None, ge=1)
    train: TrainConfig = Field(default_factory=_sft)


class SelfRewardConfig(Strict):
    dir: str = "runs/self-reward"
    # M0: a vllm entry of `models`. It answers, judges itself, and is trained.
    model: str
    iterations: int = Field(2, ge=1)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    samples_per_prompt: int = Field(4, ge=2)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: Optional[int] = Field(None, ge=1)   # None: the model's own max_tokens
    judge_prompt: str = "rubric-additive-v1"
    judgments_per_sample: int = Field(3, ge=1)
    judge_temperature: float = Field(0.7, ge=0)
    judge_max_tokens: int = Field(256, ge=8)
    # Unparsable judgments are asked again (new seed) up to this many times.
    judge_max_attempts: int = Field(3, ge=1)
    constrain_format: bool = False
    logprob_weighted: bool = False
    # A best-worst reward gap <= min_gap is a tie: the prompt gives no pair.
    min_gap: float = Field(0.0, ge=0)
    max_in_flight: int = Field(16, ge=1)
    request_timeout_s: float = Field(600.0, gt=0)
    agreement: AgreementConfig = Field(default_factory=AgreementConfig)
    seed: Optional[SeedConfig] = None
    train: TrainConfig = Field(default_factory=_dpo)
    # The arena rating of each new model against the previous one (the config's judge), on these prompts.
    eval_instructions: str = "../shared/data/instructions/vicuna_bench.jsonl"
    eval_limit: Optional[int] = Field(20, ge=1)
    version_overrides: dict[str, object] = Field(default_factory=dict)
