"""The `self_reward:` section (Self-Rewarding LMs, Yuan et al. 2024): the defaults are the paper's."""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.data import InstructionFormat
from arena_ray.settings.names import name_problem
from arena_ray.settings.train import TrainConfig


def _dpo() -> TrainConfig:
    return TrainConfig(learning_rate=1e-6, beta=0.1)


def _sft() -> TrainConfig:
    return TrainConfig(learning_rate=5.5e-6)


_EVAL_SETS = ["../shared/data/instructions/vicuna_bench.jsonl", "../shared/data/instructions/arena_hard_v0.1.jsonl",
              "../shared/data/instructions/mt_bench.jsonl"]


class GenerateConfig(Strict):
    """Self-instruction creation (after Self-Instruct): M_{t-1} writes iteration t's prompts from
    few-shot examples, and only those that pass Self-Instruct's filters are kept."""

    seed_path: str = "../shared/data/instructions/self_instruct_seed_tasks.jsonl"
    """Seed tasks the few-shot examples are sampled from (with the prompts kept by earlier iterations); new prompts
    must differ from them."""
    few_shot: int = Field(8, ge=1)
    """Examples shown per generation request (the paper: 8)."""
    max_example_chars: Optional[int] = Field(600, ge=1)
    """Longer seed tasks are not shown as examples (they still count as near duplicates); null: no limit."""
    attempts_per_prompt: int = Field(8, ge=1)
    """Generation requests per iteration at most per_iteration x this; when they run out the iteration warns and
    goes on with the prompts it kept."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature of the generated prompts."""
    top_p: float = Field(0.9, gt=0, le=1)
    """Nucleus sampling of the generated prompts."""
    max_tokens: int = Field(128, ge=8)
    """New tokens per generated prompt."""
    seed: int = 0
    """Seed of the few-shot sampling (each request's examples depend on it, the iteration and the request)."""
    near_duplicate: float = Field(0.7, gt=0, le=1)
    """A prompt whose estimated word-set Jaccard similarity (MinHash LSH) to a seed task, an earlier prompt or an
    evaluation prompt is at least this is refused (Self-Instruct: ROUGE-L 0.7)."""
    min_words: int = Field(3, ge=1)
    """Shorter prompts (words) are refused."""
    max_words: int = Field(150, ge=1)
    """Longer prompts (words) are refused."""
    decontaminate_ngram: int = Field(13, ge=1)
    """A prompt sharing a word n-gram of this length with an evaluation prompt is refused (GPT-3: 13)."""
    decontaminate: list[str] = Field(default_factory=lambda: list(_EVAL_SETS))
    """Evaluation prompt files generated prompts must not leak from (every user turn); `eval_instructions` is
    always among them."""
    output_regex: Optional[str] = None
    """Hold each generated prompt to this regular expression (vLLM structured outputs); null: free text."""

    @field_validator("output_regex")
    @classmethod
    def _regex(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"not a regular expression: {err}") from None
        return value

    @model_validator(mode="after")
    def _length_window(self) -> "GenerateConfig":
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is above max_words ({self.max_words}): "
                             "nothing would be kept")
        return self


class PromptsConfig(Strict):
    source: Literal["file", "generate"] = "file"
    """file: the prompts of `path`; generate: M_{t-1} writes them (`generate`, Self-Instruct style)."""
    path: str = "../shared/data/instructions/self_instruct_user_oriented.jsonl"
    """Prompt file (source: file)."""
    format: InstructionFormat = "auto"
    """Record format; auto: detected per record."""
    per_iteration: int = Field(64, ge=1)
    """Prompts per iteration: the next this many of the file (fresh every iteration), or this many generated."""
    offset: int = Field(0, ge=0)
    """Prompts skipped at the start of the file."""
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    """Self-instruction creation (source: generate)."""


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


class ReferenceConfig(Strict):
    """A reference model's recorded answers to the eval prompts (AlpacaEval's baseline role)."""

    model: str = "gpt-4-0314"
    """Its name in the arena and the summary (a name no other model of the run has)."""
    answers: str = "../shared/data/answers/arena_hard_v0.1/gpt-4-0314.jsonl"
    """Its answers file (arena-hard, FastChat or `question_id, text` JSONL) covering the eval prompts."""


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
    eval_instructions: str = "../shared/data/instructions/arena_hard_v0.1.jsonl"
    """Prompts of the arena that rates each new model against the previous one, M0 and the reference (the
    config's judge)."""
    eval_limit: Optional[int] = Field(20, ge=1)
    """Eval prompts used; null: all."""
    reference: Optional[ReferenceConfig] = Field(default_factory=lambda: ReferenceConfig())
    """Recorded answers every model is also judged against on the eval prompts, for the (length-controlled)
    win rate; null: none."""
    max_length_growth: float = Field(1.5, gt=1)
    """Reward-hacking guard: a model whose mean eval answer length grew by more than this factor over M0 while
    its length-controlled win rate did not rise gets a warning."""
    stop_on_hacking: bool = False
    """Stop the loop (after the iteration's summary row) when the guard fires."""
    version_overrides: dict[str, object] = Field(default_factory=dict)
    """Merged into the model's entry for every trained version."""

    @model_validator(mode="after")
    def _reference_name(self) -> "SelfRewardConfig":
        ref = self.reference.model if self.reference else None
        if ref is not None:
            problem = name_problem(ref, in_config=True)
            if problem:
                raise ValueError(f"reference.model: {problem}")
            if ref == self.model or ref.startswith(f"{self.model}@"):
                raise ValueError(f"reference.model '{ref}' is a name of the model being trained; choose another")
        return self
