"""End-to-end generation throughput of the arena vs the bare vLLM engine, on the same prompts, same run.

Bare: vLLM's AsyncLLM in this process, all prompts submitted at once (the engine's best case).
Arena: the same model as a Ray Serve application, driven by the coordinator actor through the scheduler
(capacity = max_num_seqs in flight), writing answers to the ledger. The judge is an instant fake so that
only the competitor's generation is timed. Prints both tokens/s and their ratio (target: arena >= 0.9x).

    .venv/bin/python benchmarks/arena_throughput.py [--prompts 16] [--max-tokens 128] [--model .models/SmolLM2-135M-Instruct]
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
import time
from pathlib import Path

CPU_ENV = {"OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
           "VLLM_LOGGING_LEVEL": "WARNING"}


def model_config(path: str, max_tokens: int, seqs: int) -> dict:
    return {"engine": "vllm", "path": path, "max_tokens": max_tokens, "max_ongoing_requests": seqs, "env": CPU_ENV,
            "vllm": {"dtype": "float32", "enforce_eager": True, "max_model_len": 4096,
                     "gpu_memory_utilization": 0.25, "max_num_seqs": seqs}}


async def bare(cfg, instructions) -> tuple[int, float]:
    from arena_ray.records import ChatMessage, GenerationRequest
    from arena_ray.serving.engines import VLLMEngine

    engine = VLLMEngine(cfg)
    warm = GenerationRequest("warm", (ChatMessage("user", "Hi"),))
    await engine.generate(warm)
    start = time.perf_counter()
    outs = await asyncio.gather(*[engine.generate(GenerationRequest(f"b{i}", (ChatMessage("user", ins.text),)))
                                  for i, ins in enumerate(instructions)])
    elapsed = time.perf_counter() - start
    engine.shutdown()
    return sum(o.completion_tokens for o in outs), elapsed


def arena(data: dict) -> tuple[int, float]:
    import ray

    from arena_ray.settings import from_dict
    from arena_ray.testing.fakes import LengthJudge
    from arena_ray.workflows.arena import run_arena

    ray.init(num_cpus=8, include_dashboard=False)
    try:
        factories = {"judge": functools.partial(LengthJudge)}
        result = run_arena(from_dict(data), show_progress=False, engine_factories=factories)
    finally:
        ray.shutdown()
    meter = result.stats["meters"]["model"]
    return meter["completion_tokens"], meter["busy_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default=".models/SmolLM2-135M-Instruct")
    parser.add_argument("--instructions", default="../shared/data/instructions/arena_hard_v0.1.jsonl")
    args = parser.parse_args()
    os.environ.update(CPU_ENV)

    from arena_ray.data.ingest import load_instructions
    from arena_ray.settings.models import ModelConfig

    instructions = load_instructions(args.instructions, limit=args.prompts)
    mcfg = model_config(args.model, args.max_tokens, args.prompts)
    bare_tokens, bare_s = asyncio.run(bare(ModelConfig.model_validate(mcfg), instructions))

    run_dir = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    data = {"run_dir": str(run_dir), "instructions": {"path": args.instructions, "limit": args.prompts},
            "models": {"model": mcfg, "other": {"engine": "replay", "num_cpus": 0.1,
                                                "path": "../shared/data/answers/arena_hard_v0.1/gpt-4-0314.jsonl"},
                       # the judge's engine is replaced by an instant fake (engine_factories) in arena()
                       "judge": {"engine": "vllm", "path": args.model, "num_cpus": 0.1}},
            "arena": {"competitors": ["model", "other"]}, "judge": {"model": "judge"},
            "rating": {"bootstrap_rounds": 0}}
    arena_tokens, arena_s = arena(data)

    bare_tps, arena_tps = bare_tokens / bare_s, arena_tokens / arena_s
    print(f"prompts={args.prompts} max_tokens={args.max_tokens} model={args.model}")
    print(f"bare vLLM engine : {bare_tokens:6d} tokens in {bare_s:7.2f}s = {bare_tps:8.2f} tok/s")
    print(f"arena end-to-end : {arena_tokens:6d} tokens in {arena_s:7.2f}s = {arena_tps:8.2f} tok/s")
    print(f"ratio arena/bare : {arena_tps / bare_tps:.3f}  (target >= 0.90)")


if __name__ == "__main__":
    main()
