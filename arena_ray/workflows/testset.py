"""`arena-ray testset`: WizardArena Offline-Diverse / Offline-Hard / Offline-Mix sets and decontamination.

setup (load sources, embed) → diverse (k-means) → hard (judge-rated difficulty on Ray Serve, resumable)
→ write sets → decontaminate training files against them → report.
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import pyarrow as pa
from tqdm import tqdm

from arena_ray.data.ingest import load_instructions
from arena_ray.data.testsets import (
    Selected,
    difficulty_span,
    find_contamination,
    mix,
    parse_difficulty,
    select_diverse,
    select_hard,
)
from arena_ray.judging.parse import weighted_score
from arena_ray.records import GenerationRequest, Instruction, SamplingSpec
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text, read_table, write_atomic
from arena_ray.serving.retry import RetryPolicy, request
from arena_ray.settings.testset import TestsetJob

SET_SCHEMA = pa.schema([("instruction_id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                        ("category", pa.string()), ("cluster", pa.int32()), ("difficulty", pa.float64())])
# score: the written 0-10; weighted: its expectation over the score tokens' probabilities (where the engine
# gives logprobs), which separates instructions a weak judge writes the same number for.
DIFFICULTY_SCHEMA = pa.schema([("instruction_id", pa.string()), ("attempt", pa.int16()), ("score", pa.float64()),
                               ("weighted", pa.float64()), ("raw", pa.string()), ("prompt_version", pa.string())])


def load_sources(paths: Sequence[str], limit: Optional[int]) -> list[Instruction]:
    """Several files: ids are prefixed with the file's stem, since sources reuse ids (MT-bench and Vicuna: 1..80)."""
    out = []
    for path in paths:
        items = load_instructions(path, limit=limit)
        if len(paths) > 1:
            items = [Instruction(f"{Path(path).stem}:{i.instruction_id}", i.text, i.source, i.category) for i in items]
        out += items
    return out


def write_set(path: Path, items: Sequence[Selected]) -> None:
    rows = {"instruction_id": [s.instruction.instruction_id for s in items], "text": [s.instruction.text for s in items],
            "source": [s.instruction.source for s in items], "category": [s.instruction.category for s in items],
            "cluster": [s.cluster for s in items], "difficulty": [s.difficulty for s in items]}
    write_atomic(pa.table(rows, schema=SET_SCHEMA), path)


def cached_difficulty(folder: Path, version: str) -> tuple[dict[str, float], dict[str, int]]:
    scores, attempts = {}, {}
    for part in sorted(folder.glob("part-*.parquet")):
        for row in read_table(part, DIFFICULTY_SCHEMA).to_pylist():
            if row["prompt_version"] != version:
                continue
            attempts[row["instruction_id"]] = max(attempts.get(row["instruction_id"], 0), row["attempt"] + 1)
            if row["score"] is not None:
                value = row["weighted"] if row["weighted"] is not None else row["score"]
                scores.setdefault(row["instruction_id"], value)
    return scores, attempts


async def _rate(client, items: list[tuple[Instruction, int]], template, job: TestsetJob, folder: Path,
                show: bool) -> None:
    limit = asyncio.Semaphore(job.hard.max_in_flight)
    policy = RetryPolicy(timeout_s=job.request_timeout_s, max_retries=2, backoff_s=2.0)
    rows: list[dict] = []
    bar = tqdm(total=len(items), desc="difficulty", unit="req", disable=not show)

    async def one(inst: Instruction, attempt: int) -> None:
        sampling = SamplingSpec(max_tokens=job.hard.max_tokens, temperature=0.0 if attempt == 0 else 0.7,
                                regex=template.output_regex if job.judge.engine == "vllm" else None,
                                seed=attempt or None, top_logprobs=5)
        req = GenerationRequest(f"difficulty-{inst.instruction_id}-{attempt}", template.messages(inst.text), sampling)
        async with limit:
            try:
                completion = await request(client, req, policy)
                raw, score, weighted = completion.text, parse_difficulty(completion.text), None
                if score is not None and completion.logprobs:
                    weighted = weighted_score(completion.logprobs, difficulty_span(raw), raw, low=0.0, high=10.0)
            except Exception as err:  # failed for good: a failed attempt, asked again in the next round
                raw, score, weighted = f"[request failed: {type(err).__name__}: {err}]"[:500], None, None
        rows.append({"instruction_id": inst.instruction_id, "attempt": attempt, "raw": raw, "score": score,
                     "weighted": weighted, "prompt_version": template.version})
        bar.update()
        if len(rows) >= 16:
            flush()

    def flush() -> None:
        batch = rows[:]
        rows.clear()
        if batch:
            write_atomic(pa.Table.from_pylist(batch, schema=DIFFICULTY_SCHEMA),
                         folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet")

    try:
        await asyncio.gather(*(one(i, a) for i, a in items))
    finally:
        flush()
        bar.close()


def rate_difficulty(job: TestsetJob, candidates: list[Instruction], out: Path, show: bool) -> dict[str, float]:
    """Judge difficulty for every candidate not yet rated; answers stream to out/difficulty/ (resumable)."""
    from arena_ray.judging.prompts import load_difficulty_template
    from arena_ray.serving.client import ServeModelClient
    from arena_ray.serving.cluster import ray_session
    from arena_ray.serving.deployments import served

    template = load_difficulty_template(job.hard.prompt)
    folder = out / "difficulty"
    folder.mkdir(parents=True, exist_ok=True)

    def todo() -> list[tuple[Instruction, int]]:
        scores, attempts = cached_difficulty(folder, template.version)
        return [(i, attempts.get(i.instruction_id, 0)) for i in candidates
                if i.instruction_id not in scores and attempts.get(i.instruction_id, 0) < job.hard.max_attempts]

    if todo():
        with ray_session(job.ray), served({"difficulty-judge": job.judge}, job.serve) as handles:
            client = ServeModelClient(handles["difficulty-judge"], job.hard.max_in_flight)

            async def rounds() -> None:
                while pending := todo():  # unparsable or failed answers are asked again, up to max_attempts
                    await _rate(client, pending, template, job, folder, show)

            asyncio.run(rounds())
    return cached_difficulty(folder, template.version)[0]


def run_testset(job: TestsetJob, show_progress: bool = True, embedder=None) -> dict:
    from arena_ray.data.embed import Embedder

    out = output_dir(job.out_dir, job.sources, name="out_dir")
    out.mkdir(parents=True, exist_ok=True)
    instructions = load_sources(job.sources, job.limit_per_source)
    embed = embedder or Embedder(job.embedding_model)
    vectors = embed([i.text for i in instructions])
    diverse = select_diverse(instructions, vectors, job.diverse.clusters, job.diverse.per_cluster, job.diverse.seed)
    write_set(out / "diverse.parquet", diverse)
    report: dict = {"instructions": len(instructions), "diverse": len(diverse)}
    sets = [diverse]
    if job.hard.enabled:
        candidates = list(instructions)
        if job.hard.candidates and job.hard.candidates < len(candidates):
            candidates = random.Random(job.hard.seed).sample(candidates, job.hard.candidates)
        difficulty = rate_difficulty(job, candidates, out, show_progress)
        hard = select_hard(candidates, difficulty, job.hard.top)
        write_set(out / "hard.parquet", hard)
        report.update(hard=len(hard), rated=len(difficulty), unrated=len(candidates) - len(difficulty))
        sets.append(hard)
    mixed = mix(*sets)
    write_set(out / "mix.parquet", mixed)
    report["mix"] = len(mixed)
    if job.decontaminate.train:
        report["decontamination"] = decontaminate(job, [s.instruction for s in mixed], embed, out)
    (out / "report.json").write_text(json_text(report, indent=2) + "\n")
    return report


def decontaminate(job: TestsetJob, test: list[Instruction], embed, out: Path) -> dict:
    d = job.decontaminate
    protected = test + load_sources(d.against, None) if d.against else test
    train = load_sources(d.train, None)
    found = find_contamination(train, protected, n=d.ngram, ngram_threshold=d.ngram_threshold,
                               train_embeddings=embed([t.text for t in train]),
                               test_embeddings=embed([t.text for t in protected]), cosine_threshold=d.cosine_threshold)
    dropped = {f.instruction_id for f in found}
    kept = [Selected(t) for t in train if t.instruction_id not in dropped]
    write_set(out / "train_decontaminated.parquet", kept)
    return {"train": len(train), "kept": len(kept), "dropped": [asdict(f) for f in found]}
