"""The `self_reward:` section (Self-Rewarding LMs, Yuan et al. 2024): the defaults are the paper's."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from arena_ray.settings.base import Strict
from arena_ray.settings.data import InstructionFormat
from arena_ray.settings.train import TrainConfig


def _dpo() -> TrainConfig:
    return TrainConfig(learning_rate=1e-6, beta=0.1)


def _sft() -> TrainConfig:
    return TrainConfig(learning_rate=5.5e-6)


class PromptsConfig(Strict):
    path: str = "../shared/data/instructions/self_instruct_user_oriented.jsonl"
    """Prompt file."""
    format: InstructionFormat = "auto"
    """Record format; auto: detected per record."""
    per_iteration: int = Field(64, ge=1)
    """Iteration t takes the next this many prompts of the file (fresh prompts every iteration)."""
    offset: int = Field(0, ge=0)
    """Prompts skipped at the start of the file."""


class AgreementConfig(Strict):
    """Judge quality against human labels on held-out preference data (PandaLM's test set format)."""

    path: Optional[str] = "../shared/data/preferences/pandalm_testset.json"
    """Human-labelled pairs; null: no agreement check."""
    offset: int = Field(0, ge=0)
    """Records skipped at the start."""
    limit: Optional[int] = Field(100, ge=1)
    """Records used; null: all."""


class SeedConfig(Strict):
    """Optional seed stage before the first iteration: SFT on instruction-following data (IFT: instructions
    with reference answers) plus evaluation-fine-tuning data (EFT: the model's own rubric judgments of
    human-ranked pairs, kept where their order agrees with the human label)."""

    ift_instructions: Optional[str] = None
    """Instructions of the IFT data."""
    ift_answers: Optional[str] = None
    """Reference answers of the IFT data (a recorded answers file: arena-hard / FastChat layout)."""
    ift_limit: Optional[int] = Field(None, ge=1)
    """IFT instructions used; null: all."""
    eft_path: Optional[str] = None
    """Human-ranked pairs for EFT (PandaLM format), disjoint from `agreement`."""
    eft_offset: int = Field(0, ge=0)
    """EFT records skipped at the start."""
    eft_limit: Optional[int] = Field(None, ge=1)
    """EFT records used; null: all."""
    train: TrainConfig = Field(default_factory=_sft)
    """The seed SFT recipe."""


class SelfRewardConfig(Strict):
    dir: str = "runs/self-reward"
    """Directory of the loop (registry, iterations, summary)."""
    model: str
    """M0: a vllm entry of `models`. It answers, judges itself, and is trained."""
    iterations: int = Field(2, ge=1)
    """Iterations M_{t-1} -> M_t."""
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    """Fresh prompts per iteration."""
    samples_per_prompt: int = Field(4, ge=2)
    """Answers sampled per prompt (N)."""
    temperature: float = Field(0.7, ge=0)
    """Sampling temperature of the answers."""
    top_p: float = Field(0.9, gt=0, le=1)
    """Nucleus sampling of the answers."""
    max_tokens: Optional[int] = Field(None, ge=1)
    """New tokens per answer; null: the model's own max_tokens."""
    judge_prompt: str = "rubric-additive-v1"
    """Single-answer rubric template (shipped name or YAML path)."""
    judgments_per_sample: int = Field(3, ge=1)
    """Rubric judgments per answer, averaged."""
    judge_temperature: float = Field(0.7, ge=0)
    """Sampling temperature of the judgments."""
    judge_max_tokens: int = Field(256, ge=8)
    """New tokens per judgment."""
    judge_max_attempts: int = Field(3, ge=1)
    """Unparsable judgments are asked again (new seed) up to this many times."""
    constrain_format: bool = False
    """Hold judgments to the rubric's output format (vLLM structured outputs)."""
    logprob_weighted: bool = False
    """Use the expected score over the score token's probabilities."""
    min_gap: float = Field(0.0, ge=0)
    """A best-worst reward gap <= min_gap is a tie: the prompt gives no pair."""
    max_in_flight: int = Field(16, ge=1)
    """Requests in flight to the model."""
    request_timeout_s: float = Field(600.0, gt=0)
    """A request without an answer after this long is a failed request (retried)."""
    agreement: AgreementConfig = Field(default_factory=AgreementConfig)
    """The self-judge against human labels."""
    seed: Optional[SeedConfig] = None
    """Optional seed stage (IFT + EFT SFT) that makes M1."""
    train: TrainConfig = Field(default_factory=_dpo)
    """The DPO recipe of every iteration."""
    eval_instructions: str = "../shared/data/instructions/vicuna_bench.jsonl"
    """Prompts of the arena that rates each new model against the previous one (the config's judge)."""
    eval_limit: Optional[int] = Field(20, ge=1)
    """Eval prompts used; null: all."""
    version_overrides: dict[str, object] = Field(default_factory=dict)
    """Merged into the model's entry for every trained version."""
