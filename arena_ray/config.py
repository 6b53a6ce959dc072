"""Typed, frozen configuration: the one place that holds every default.

`load(path, overrides)` reads safe YAML, applies `dotted.key=value` overrides (values parsed as YAML
scalars) and validates; any unknown key or bad value raises ConfigError naming the key.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from arena_ray.strict import InstructionFormat, InstructionsConfig, RayConfig  # noqa: F401  (this module's API)
from arena_ray.strict import Strict as _Strict


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key."""


class ServeConfig(_Strict):
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    # Keep the model applications running after the job (for a long-lived RayService).
    keep_alive: bool = False
    deploy_timeout_s: float = Field(900.0, gt=0)


class VLLMConfig(_Strict):
    dtype: str = "auto"
    enforce_eager: bool = False
    max_model_len: Optional[int] = Field(None, ge=16)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int = Field(64, ge=1)
    seed: int = 0
    # Passed through to vllm.AsyncEngineArgs unchanged (e.g. quantization, kv_cache_dtype).
    extra: dict[str, object] = Field(default_factory=dict)


class OpenAIConfig(_Strict):
    base_url: str = "http://127.0.0.1:8000/v1"
    # Name of the environment variable that holds the key: keys never live in configs or run dirs.
    api_key_env: str = "OPENAI_API_KEY"
    model: str = ""
    connect_timeout_s: float = Field(10.0, gt=0)
    # The endpoint is a vLLM server: send constrained formats as vLLM's `structured_outputs` request field.
    structured_outputs: bool = False


class ModelConfig(_Strict):
    engine: Literal["vllm", "openai", "replay"]
    path: str = ""  # HF folder (vllm) or answers file (replay)
    prompt_format: Literal["chat", "completion"] = "chat"
    # A Jinja chat template (inline text, or a path to a .jinja file) replacing the tokenizer's own.
    chat_template: Optional[str] = None
    # For prompt_format=completion (base models): {instruction} is replaced by the user turn.
    completion_template: str = "Question: {instruction}\n\nAnswer:"
    stop: tuple[str, ...] = ()
    system_prompt: Optional[str] = None
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    replicas: int = Field(1, ge=1)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    # Requests one replica takes at once (the engine batches them); the coordinator keeps
    # replicas * max_ongoing_requests in flight so that every replica stays busy.
    max_ongoing_requests: int = Field(16, ge=1)
    env: dict[str, str] = Field(default_factory=dict)
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)

    @model_validator(mode="after")
    def _needs_path(self) -> "ModelConfig":
        if self.engine in ("vllm", "replay") and not self.path:
            raise ValueError(f"engine '{self.engine}' needs 'path'")
        if self.engine == "openai" and not self.openai.model:
            raise ValueError("engine 'openai' needs 'openai.model'")
        return self


class ArenaConfig(_Strict):
    competitors: tuple[str, ...] = Field(min_length=2)
    pairing: Literal["all_pairs", "target_vs_all"] = "all_pairs"
    target: Optional[str] = None
    request_timeout_s: float = Field(600.0, gt=0)
    # Transport failures (timeouts, dead replicas) are retried this many times before a request fails.
    max_retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(1.0, ge=0)
    # None: the judge's replicas * max_ongoing_requests (every judge replica kept full, no more).
    max_in_flight_judgments: Optional[int] = Field(None, ge=1)
    # Ray restarts a dead coordinator this many times; each new one resumes from the ledger.
    coordinator_restarts: int = Field(3, ge=0)
    flush_every: int = Field(32, ge=1)
    flush_interval_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _target_known(self) -> "ArenaConfig":
        if len(set(self.competitors)) != len(self.competitors):
            raise ValueError("competitors has duplicates")
        if self.pairing == "target_vs_all" and self.target not in self.competitors:
            raise ValueError(f"pairing target_vs_all needs 'target' among competitors, got {self.target!r}")
        return self


class JudgeConfig(_Strict):
    model: str
    prompt: str = "pairwise-v1"
    max_tokens: int = Field(256, ge=8)
    temperature: float = Field(0.0, ge=0)
    # Parse failures are retried with sampling on, so a deterministic judge can still recover.
    retry_temperature: float = Field(0.7, ge=0)
    max_attempts: int = Field(3, ge=1)
    # How to combine the two games of a battle when their winners disagree.
    disagreement: Literal["average", "tie", "discard"] = "average"
    # |score_a - score_b| <= tie_margin is a tie.
    tie_margin: float = Field(0.0, ge=0)
    # Answers longer than this are cut (with a marker) in the judge prompt so it fits the judge's context.
    max_answer_chars: int = Field(4000, ge=100)
    logprob_weighted: bool = True
    top_logprobs: int = Field(5, ge=1, le=20)
    # Constrain the judge's output to the score-line format (vLLM structured outputs): weak judges
    # then always produce a parsable verdict. Ignored by engines that cannot constrain.
    constrain_format: bool = True


class RatingConfig(_Strict):
    bootstrap_rounds: int = Field(100, ge=0)
    seed: int = 0
    scale: float = 400.0
    base: float = 1000.0


class Config(_Strict):
    run_dir: str = "runs/local"
    ray: RayConfig = Field(default_factory=RayConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    instructions: InstructionsConfig = Field(default_factory=InstructionsConfig)
    models: dict[str, ModelConfig]
    arena: ArenaConfig
    judge: JudgeConfig
    rating: RatingConfig = Field(default_factory=RatingConfig)
    # `arena-ray flywheel` reads this section; `arena-ray arena` ignores it.
    flywheel: Optional["FlywheelConfig"] = None
    # `arena-ray self-reward` and `arena-ray ppo` read these sections.
    self_reward: Optional["SelfRewardConfig"] = None
    ppo: Optional["PPOConfig"] = None

    @model_validator(mode="after")
    def _names_resolve(self) -> "Config":
        for name in self.arena.competitors:
            if name not in self.models:
                raise ValueError(f"arena.competitors: unknown model '{name}' (models: {sorted(self.models)})")
        if self.judge.model not in self.models:
            raise ValueError(f"judge.model: unknown model '{self.judge.model}' (models: {sorted(self.models)})")
        if self.models[self.judge.model].engine == "replay":
            raise ValueError(f"judge.model: '{self.judge.model}' is a replay model and cannot judge")
        if self.flywheel is not None:
            fw = self.flywheel
            for name in (fw.target, *fw.competitors):
                if name not in self.models:
                    raise ValueError(f"flywheel: unknown model '{name}' (models: {sorted(self.models)})")
            if self.models[fw.target].engine != "vllm":
                raise ValueError(f"flywheel.target: '{fw.target}' must be a vllm model (its weights are trained)")
        for section, name in (("self_reward.model", self.self_reward and self.self_reward.model),
                              ("ppo.policy", self.ppo and self.ppo.policy)):
            if name and self.models.get(name, None) is None:
                raise ValueError(f"{section}: unknown model '{name}' (models: {sorted(self.models)})")
            if name and self.models[name].engine != "vllm":
                raise ValueError(f"{section}: '{name}' must be a vllm model (its weights are trained)")
        return self

    def served_models(self) -> tuple[str, ...]:
        """Models that need a Serve application: every competitor plus the judge (shared if both)."""
        names = list(self.arena.competitors)
        if self.judge.model not in names:
            names.append(self.judge.model)
        return tuple(names)

    def arena_fingerprint(self) -> str:
        """Hash of what decides battle outcomes; a run dir refuses to resume under another one.

        Serving layout (replicas, resources, engine args) is left out, and so are fields at their defaults,
        so that a release adding an option with a behaviour-preserving default keeps old runs resumable.
        """
        layout = {"replicas", "num_cpus", "num_gpus", "max_ongoing_requests", "env", "vllm", "openai"}
        relevant = {
            "models": {n: self.models[n].model_dump(mode="json", exclude=layout, exclude_defaults=True)
                       for n in self.served_models()},
            "judge": self.judge.model_dump(mode="json", exclude={"max_attempts"}, exclude_defaults=True),
        }
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


from arena_ray.flywheel.settings import FlywheelConfig  # noqa: E402  (forward references of Config)
from arena_ray.selfreward.settings import SelfRewardConfig  # noqa: E402
from arena_ray.train.ppo_settings import PPOConfig  # noqa: E402

Config.model_rebuild()


class DiverseConfig(_Strict):
    clusters: int = Field(20, ge=1)
    per_cluster: int = Field(2, ge=1)
    seed: int = 0


class HardConfig(_Strict):
    enabled: bool = True
    top: int = Field(10, ge=1)
    # Rate only a seeded sample of this many instructions (the paper: top 1,000 of 10,000); None: all.
    candidates: Optional[int] = Field(None, ge=1)
    prompt: str = "difficulty-v1"
    max_tokens: int = Field(4, ge=1)
    max_attempts: int = Field(2, ge=1)
    max_in_flight: int = Field(16, ge=1)
    seed: int = 0


class DecontaminateConfig(_Strict):
    train: tuple[str, ...] = ()     # training instruction files to clean
    against: tuple[str, ...] = ()   # benchmark files to protect, besides the test sets built here
    ngram: int = Field(8, ge=1)
    ngram_threshold: float = Field(0.5, gt=0, le=1)
    cosine_threshold: float = Field(0.9, gt=0, le=1)


class TestsetJob(_Strict):
    """`arena-ray testset`: WizardArena Offline-Diverse / Offline-Hard / Offline-Mix and decontamination."""

    out_dir: str = "runs/testset"
    sources: tuple[str, ...] = Field(min_length=1)
    limit_per_source: Optional[int] = Field(None, ge=1)
    embedding_model: Optional[str] = None  # None: the all-MiniLM-L6-v2 packaged on PyPI
    diverse: DiverseConfig = Field(default_factory=DiverseConfig)
    hard: HardConfig = Field(default_factory=HardConfig)
    judge: Optional[ModelConfig] = None
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    request_timeout_s: float = Field(300.0, gt=0)
    ray: RayConfig = Field(default_factory=RayConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @model_validator(mode="after")
    def _judge_for_hard(self) -> "TestsetJob":
        if self.hard.enabled and self.judge is None:
            raise ValueError("hard.enabled needs a 'judge' model")
        if self.judge is not None and self.judge.engine == "replay":
            raise ValueError("judge: a replay model cannot rate difficulty")
        return self


def parse_override(text: str) -> tuple[list[str], object]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not key=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}': bad key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override '{text}': value is not valid YAML: {err}") from err
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


def _format_validation(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def from_dict(data: dict, source: str = "<dict>", schema: type[BaseModel] = Config):
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, source)) from None


def load(path: str | Path, overrides: list[str] | None = None, schema: type[BaseModel] = Config):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return from_dict(apply_overrides(data, overrides or []), source=str(path), schema=schema)


def dump(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
