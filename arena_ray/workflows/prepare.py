"""`arena-ray data prepare`: instruction files → one table with stable ids and provenance → cleaned
(length, language, exact and near duplicates, contamination) → held-out set + shards D0..DN.

setup → run → cleanup. The per-record work (language identification, MinHash signatures) runs on Ray Data,
so the same code spreads over a cluster for millions of rows; it is written once as Parquet and reused when
the job re-runs with the same inputs. The decisions over the whole table are in clean.py (pure).

Out dir:  ingested.parquet  annotations/  clean.parquet  removed.parquet  holdout.parquet
          shards/D0.parquet …  report.json
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from arena_ray.data import clean
from arena_ray.data.ingest import claim_id, iter_instructions, load_instructions
from arena_ray.errors import InputError
from arena_ray.records import Instruction, to_table
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text, write_atomic
from arena_ray.settings.data import DataJob, SourceConfig

log = logging.getLogger(__name__)

INGESTED_SCHEMA = pa.schema([("instruction_id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                             ("category", pa.string()), ("locator", pa.string())])


def ingest(sources: tuple[SourceConfig, ...]) -> tuple[list[Instruction], dict[str, str]]:
    """Every source's records in order; ids must be unique across sources (id_prefix resolves clashes)."""
    out: list[Instruction] = []
    where_of: dict[str, str] = {}
    for src in sources:
        for n, (where, inst) in enumerate(iter_instructions(src.path, src.format)):
            if src.limit is not None and n >= src.limit:
                break
            inst = Instruction(src.id_prefix + inst.instruction_id, inst.text, inst.source, inst.category)
            claim_id(where_of, inst, where, hint="; give one of the sources an id_prefix")
            out.append(inst)
    if not out:
        raise InputError("data sources hold no instructions")
    return out, where_of


def _annotate_batch(batch: pa.Table, num_perm: int, shingle: int) -> pa.Table:
    notes = [clean.annotate(Instruction(i, t, ""), num_perm, shingle)
             for i, t in zip(batch["instruction_id"].to_pylist(), batch["text"].to_pylist())]
    return pa.table({
        "instruction_id": [a.instruction_id for a in notes], "chars": [a.chars for a in notes],
        "language": [a.language for a in notes], "language_confidence": [a.language_confidence for a in notes],
        "exact_key": [a.exact_key for a in notes],
        "minhash": pa.array([a.minhash for a in notes], pa.list_(pa.uint32())),
    })


def annotate_all(job: DataJob, instructions: list[Instruction], out: Path) -> list[clean.Annotation]:
    """Ray Data map over the table, cached in out/annotations/ under a fingerprint of texts and parameters."""
    c = job.clean
    key = hashlib.sha256(json.dumps([[i.instruction_id, i.text] for i in instructions] + [c.num_perm, c.shingle, clean.SCHEME])
                         .encode()).hexdigest()[:16]
    done, target = out / "annotations" / "_done.json", out / "annotations"
    if not (done.exists() and json.loads(done.read_text()).get("fingerprint") == key):
        import ray

        tmp = out / "annotations.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        table = pa.table({"instruction_id": [i.instruction_id for i in instructions],
                          "text": [i.text for i in instructions]})
        blocks = max(1, min(len(instructions) // job.annotate_batch_size, 1024))
        (ray.data.from_arrow(table).repartition(blocks)
            .map_batches(_annotate_batch, batch_format="pyarrow", batch_size=job.annotate_batch_size,
                         fn_kwargs={"num_perm": c.num_perm, "shingle": c.shingle})
            .write_parquet(str(tmp)))
        (tmp / "_done.json").write_text(json.dumps({"fingerprint": key}) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    rows = {r["instruction_id"]: r for r in pq.read_table(target).to_pylist()}
    return [clean.Annotation(i.instruction_id, rows[i.instruction_id]["chars"], rows[i.instruction_id]["language"],
                             rows[i.instruction_id]["language_confidence"], rows[i.instruction_id]["exact_key"],
                             np.asarray(rows[i.instruction_id]["minhash"], dtype=np.uint32))
            for i in instructions]


def decide(job: DataJob, instructions: list[Instruction], notes: list[clean.Annotation]) -> list[clean.Removal]:
    """Each step sees only what the earlier steps kept; every removal is charged to one step."""
    c = job.clean
    removals = clean.length_removals(notes, c.min_chars, c.max_chars)
    notes = clean.apply_removals(notes, removals)
    step = clean.language_removals(notes, c.languages, c.language_min_confidence)
    removals += step
    notes = clean.apply_removals(notes, step)
    if c.exact_dedup:
        step = clean.exact_duplicate_removals(notes)
        removals += step
        notes = clean.apply_removals(notes, step)
    if c.near_dedup:
        step = clean.near_duplicate_removals(notes, c.near_dup_threshold, c.num_perm)
        removals += step
        notes = clean.apply_removals(notes, step)
    if c.decontaminate_against:
        # Protected ids carry their file's name, so the report says which benchmark a record overlaps.
        protected = [Instruction(f"{Path(path).name}#{i.instruction_id}", i.text, i.source)
                     for path in c.decontaminate_against for i in load_instructions(path)]
        kept = clean.apply_removals(instructions, removals)
        removals += clean.contamination_removals(kept, protected, c.contamination_ngram, c.contamination_threshold)
    return removals


def write_instructions(items: list[Instruction], path: Path) -> None:
    write_atomic(to_table(items, Instruction), path)


def run_data(job: DataJob) -> dict:
    from arena_ray.serving.cluster import ray_session

    # --- setup
    out = output_dir(job.out_dir, [s.path for s in job.sources], name="out_dir")
    out.mkdir(parents=True, exist_ok=True)
    instructions, where_of = ingest(job.sources)
    write_atomic(pa.Table.from_pylist([{**i.__dict__, "locator": where_of[i.instruction_id]} for i in instructions],
                                      schema=INGESTED_SCHEMA), out / "ingested.parquet")
    # --- run
    with ray_session(job.ray):
        notes = annotate_all(job, instructions, out)
    removals = decide(job, instructions, notes)
    kept = clean.apply_removals(instructions, removals)
    holdout_ids, shard_ids = clean.split([i.instruction_id for i in kept], job.split.shards, job.split.holdout,
                                         job.split.seed)
    by_id = {i.instruction_id: i for i in kept}
    write_instructions(kept, out / "clean.parquet")
    write_atomic(pa.Table.from_pylist([r.__dict__ for r in removals],
                                      schema=pa.schema([(n, pa.string()) for n in ("instruction_id", "step", "detail")])),
                 out / "removed.parquet")
    write_instructions([by_id[i] for i in holdout_ids], out / "holdout.parquet")
    (out / "shards").mkdir(exist_ok=True)
    for k, ids in enumerate(shard_ids):
        write_instructions([by_id[i] for i in ids], out / "shards" / f"D{k}.parquet")
    # --- report
    report = clean.summary(len(instructions), removals, len(kept),
                           texts={i.instruction_id: i.text for i in instructions})
    report.update({"sources": {s.path: sum(1 for i in instructions if i.source == Path(s.path).name)
                               for s in job.sources},
                   "languages": _histogram(n.language for n in notes),
                   "holdout": len(holdout_ids), "shards": [len(ids) for ids in shard_ids], "out_dir": str(out)})
    (out / "report.json").write_text(json_text(report, indent=2) + "\n")
    return report


def _histogram(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
