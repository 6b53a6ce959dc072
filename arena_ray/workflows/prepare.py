"""`arena-ray data prepare`: instruction files → one table with stable ids and provenance → cleaned (length,
language, exact and near duplicates, contamination) → held-out set + shards D0..DN.

setup → run → cleanup, streamed with Ray Data end to end: the driver plans pieces of the sources (sizes and
footers), chains Ray Data operations over them and reads back only small tables (a row per piece, per shuffle
group, the split-key histogram), so its memory does not grow with the table. What each task does is in
data/tasks.py, the decisions in data/clean.py (both pure). Duplicates are found by shuffles of small rows:
records grouped by exact key; by MinHash LSH band key, then the candidates' signatures fetched from their own
pieces, pairs checked, and the few near-duplicate pairs resolved in table order — the same records a
sequential MinHash LSH pass removes. The eval sets a run decontaminates against are small: broadcast. A hash
of each id deals the records into the held-out set and shards. Annotations (language, MinHash) are cached
under a fingerprint of the ingested records and reused when the job re-runs on the same inputs.

Out dir (each table a directory of Parquet parts whose name order is their row order; load_instructions,
pyarrow and Ray Data read a directory as one table):
          ingested.parquet/  annotations/  clean.parquet/  removed.parquet/  holdout.parquet/
          shards/D0.parquet/ …  report.json
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from arena_ray.data import clean, pieces, tasks
from arena_ray.data.ingest import load_instructions
from arena_ray.errors import InputError
from arena_ray.records import INSTRUCTION_SCHEMA, Instruction
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text, write_atomic
from arena_ray.settings.data import DataJob

log = logging.getLogger(__name__)

GROUP_ROWS = 50_000      # rows per part of the held-out set and shards
SHUFFLE_PIECE = 1 << 20  # bytes each map task of a shuffle sends each reducer, on average
# Estimated bytes per row of each shuffle's input (ids and locators; exact keys; band keys; band members;
# members with their signatures).
ID_BYTES, EXACT_BYTES, BAND_BYTES, MEMBER_BYTES, CANDIDATE_BYTES = 100, 80, 24, 20, 600


def run_data(job: DataJob) -> dict:
    from arena_ray.serving.cluster import ray_session

    # --- setup
    out = output_dir(job.out_dir, [s.path for s in job.sources], name="out_dir")
    out.mkdir(parents=True, exist_ok=True)
    planned = [pieces.plan(k, s.path, s.format, s.id_prefix, s.limit) for k, s in enumerate(job.sources)]
    # --- run
    with ray_session(job.ray), _task_shuffles():
        plan, errors = _number(planned)
        with _step("ingest"):
            ingested = _ingest(plan, errors, out)
        protected = _protected(job)
        with _step("annotate"):
            _annotate(job, plan, [r["digest"] for r in ingested], out)
        with _step("clean"):
            stats, counts = _assemble(job, plan, _duplicates(job, plan, out, sum(r["rows"] for r in ingested)),
                                      protected, out)
        with _step("split"):
            row_bytes = 100 + sum(r["bytes"] for r in ingested) // max(1, sum(r["rows"] for r in ingested))
            sizes = _split(job, plan, out, counts, row_bytes)
    for name in ("clean.parquet", "removed.parquet", "holdout.parquet", "shards"):
        _swap(out / f"{name}.tmp", out / name)
    # --- report
    report = _report(job, stats, sizes, out)
    (out / "report.json").write_text(json_text(report, indent=2) + "\n")
    return report


@contextmanager
def _step(name: str):
    start = time.perf_counter()
    yield
    log.info("data: %s done in %.1f s", name, time.perf_counter() - start)


@contextmanager
def _task_shuffles():
    """Ray Data's hash shuffle starts aggregator actors for every shuffle (seconds each, on a small cluster);
    the sort-based one runs as plain tasks."""
    import ray
    from ray.data.context import ShuffleStrategy

    ctx = ray.data.DataContext.get_current()
    before = ctx.shuffle_strategy
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        ctx.shuffle_strategy = before


def _over(plan: list[pieces.Piece], fn, **kwargs):
    """A Ray Dataset of one row per piece, mapped by `fn` (one task per piece)."""
    import ray

    rows = [{**p.as_row(), "piece": k} for k, p in enumerate(plan)]
    return (ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
            .map_batches(fn, batch_size=1, batch_format="pyarrow", fn_kwargs=kwargs))


def _groups(ds, key, fn, *, rows: int = 0, row_bytes: int = 0, **kwargs):
    """`fn` on the rows of each value of `key` (Ray Data's map_groups: a sort-based shuffle whose m map tasks
    each cut their block into m pieces, one per reducer). Ray hands a task's outputs under 100 KiB to its
    caller inline, and a shuffle's caller is the driver: pieces that small would pile up in the driver's own
    memory, growing with the data. Given an estimate of the input (`rows` × `row_bytes`), it is first cut into
    m = sqrt(bytes / 1 MiB) blocks, so pieces are ~1 MiB and go to the object store. Keys spread over m buckets
    (`_blocks`) keep every reducer busy."""
    if rows and row_bytes:
        blocks = _blocks(rows, row_bytes)
        ds = ds.repartition(target_num_rows_per_block=max(1, -(-rows // blocks)), strict=True)
    return ds.groupby(key).map_groups(fn, batch_format="pyarrow", fn_kwargs=kwargs)


def _blocks(rows: int, row_bytes: int) -> int:
    return max(1, math.isqrt(rows * row_bytes // SHUFFLE_PIECE))


def _number(planned: list[list[pieces.Piece]]) -> tuple[list[pieces.Piece], list[tuple]]:
    """Every source's pieces, those of large JSON-lines files numbered (first line and record) from one
    parallel pass that counts their lines; a file-level error that pass finds (not UTF-8) is kept for later,
    to be weighed against errors earlier in the table."""
    counting = [p for ps in planned if len(ps) > 1 and ps[0].kind == "lines" for p in ps]
    counts = {}
    if counting:
        for row in _over(counting, tasks.count_piece).take_all():
            counts[(counting[row["piece"]].source, counting[row["piece"]].start)] = row
    plan, errors = [], []
    for ps in planned:
        if len(ps) > 1 and ps[0].kind == "lines":
            found = [counts[(p.source, p.start)] for p in ps]
            errors += [(p.order(-1), p.start, c["error"]) for p, c in zip(ps, found) if c["error"]]
            ps = pieces.number(ps, [(c["lines"], c["records"]) for c in found])
        plan += ps
    return plan, errors


def _ingest(plan: list[pieces.Piece], errors: list[tuple], out: Path) -> list[dict]:
    """Parse every piece into ingested.parquet; raise the first bad record or clashing id in table order, as a
    sequential read would (and write nothing). Returns each piece's digest, rows and text bytes."""
    tmp = out / "ingested.parquet.tmp"
    _fresh(tmp)
    stats = sorted(_over(plan, tasks.ingest_piece, parts=str(tmp)).take_all(), key=lambda r: r["piece"])
    errors = errors + [(r["order"], r["rank"], r["error"]) for r in stats if r["error"] is not None]
    total = sum(r["rows"] for r in stats)
    ids = _over(plan, tasks.piece_ids, parts=str(tmp), buckets=_blocks(total, ID_BYTES))
    clashes = _groups(ids, "bucket", tasks.first_clash, rows=total, row_bytes=ID_BYTES)
    errors += [(r["order"], r["rank"], r["error"]) for r in clashes.take_all()]
    if errors:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(min(errors)[2])
    if not total:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError("data sources hold no instructions")
    _swap(tmp, out / "ingested.parquet")
    log.info("data: %d records ingested from %d pieces", total, len(plan))
    return [{k: r[k] for k in ("digest", "rows", "bytes")} for r in stats]


def _protected(job: DataJob) -> list[Instruction]:
    """The eval sets no training instruction may overlap: small, read here and broadcast to the tasks. Their ids
    carry their file's name, so the report says which benchmark a record overlaps."""
    return [Instruction(f"{Path(path).name}#{i.instruction_id}", i.text, i.source)
            for path in job.clean.decontaminate_against for i in load_instructions(path)]


def _annotate(job: DataJob, plan: list[pieces.Piece], digests: list[str], out: Path) -> None:
    """Language, length, exact key and MinHash of every record, a task per piece, cached in out/annotations/
    under a fingerprint of the ingested records (in order) and the MinHash parameters."""
    c = job.clean
    key = hashlib.sha256(json.dumps([digests, c.num_perm, c.shingle, clean.SCHEME])
                         .encode()).hexdigest()[:16]
    target = out / "annotations"
    done = target / "_done.json"
    if done.exists() and json.loads(done.read_text()).get("fingerprint") == key:
        return
    tmp = out / "annotations.tmp"
    _fresh(tmp)
    _over(plan, tasks.annotate_piece, parts=str(out / "ingested.parquet"), target=str(tmp), num_perm=c.num_perm,
          shingle=c.shingle, batch_size=job.annotate_batch_size).take_all()
    (tmp / "_done.json").write_text(json.dumps({"fingerprint": key}) + "\n")
    _swap(tmp, target)


def _duplicates(job: DataJob, plan: list[pieces.Piece], out: Path, total: int):
    """Ray Datasets (lazy) of the exact and near duplicates' removals (tasks.STATUS_SCHEMA rows)."""
    c, parts, notes = job.clean, str(out / "ingested.parquet"), str(out / "annotations")
    found = []
    if c.exact_dedup:
        rows = _over(plan, tasks.exact_rows, parts=parts, annotations=notes, c=c,
                     buckets=_blocks(total, EXACT_BYTES))
        found.append(_groups(rows, "bucket", tasks.exact_status, rows=total, row_bytes=EXACT_BYTES))
    if c.near_dedup:
        bands, per_band = clean.lsh_bands(c.near_dup_threshold, c.num_perm)
        keys = _over(plan, tasks.band_rows, annotations=notes, c=c, bands=bands, rows=per_band,
                     buckets=_blocks(total * bands, BAND_BYTES))
        # Held in the object store (not the driver): few rows, and their count sizes the shuffles after.
        members = _groups(keys, "bucket", tasks.band_members, rows=total * bands,
                          row_bytes=BAND_BYTES).materialize()
        n = members.count()
        candidates = _groups(members, "piece", tasks.member_signatures, rows=n, row_bytes=MEMBER_BYTES,
                             parts=parts, annotations=notes, buckets=_blocks(n, CANDIDATE_BYTES))
        edges = _groups(candidates, "bucket", tasks.near_edges, rows=n, row_bytes=CANDIDATE_BYTES,
                        threshold=c.near_dup_threshold, num_perm=c.num_perm, drop_exact=c.exact_dedup)
        found.append(_groups(edges, None, tasks.near_status))
    return found


def _assemble(job: DataJob, plan: list[pieces.Piece], found: list, protected: list[Instruction],
              out: Path) -> tuple[list[dict], np.ndarray]:
    """Every piece with the decisions about its rows → its parts of clean.parquet and removed.parquet. Back
    to the driver, streamed: a row of counts per piece, and the split-key histogram of the kept rows summed."""
    import ray

    clean_dir, removed_dir = out / "clean.parquet.tmp", out / "removed.parquet.tmp"
    _fresh(clean_dir)
    _fresh(removed_dir)
    every = pa.table({"piece": pa.array(range(len(plan)), pa.int32()), "row": pa.array([-1] * len(plan), pa.int32()),
                      "step": [""] * len(plan), "detail": [""] * len(plan)}, schema=tasks.STATUS_SCHEMA)
    # A marker per piece, in blocks of two: as many reducers as that, each assembling a couple of pieces.
    markers = ray.data.from_arrow([every.slice(k, 2) for k in range(0, len(plan), 2)])
    status = markers.union(*found) if found else markers
    done = _groups(status, "piece", tasks.assemble_piece, parts=str(out / "ingested.parquet"),
                   annotations=str(out / "annotations"), clean_dir=str(clean_dir), removed_dir=str(removed_dir),
                   c=job.clean, protected=protected, seed=job.split.seed)
    stats, counts = [], np.zeros(1 << tasks.HIST_BITS, dtype=np.int64)
    for batch in done.iter_batches(batch_format="pyarrow", batch_size=64):
        for r in batch.drop_columns(["hist"]).to_pylist():
            stats.append({**{k: r[k] for k in ("piece", "ingested", "kept")}, **json.loads(r["stats"])})
        for h in batch["hist"].to_pylist():
            counts += np.frombuffer(h, dtype=np.int64)
    if not any(removed_dir.iterdir()):   # keep the table's columns when nothing was removed
        write_atomic(pa.table({n: pa.array([], pa.string()) for n in tasks.REMOVED_SCHEMA.names}),
                     tasks.part(removed_dir, 0))
    return sorted(stats, key=lambda r: r["piece"]), counts


def _split(job: DataJob, plan: list[pieces.Piece], out: Path, counts: np.ndarray, row_bytes: int) -> dict:
    """Held-out set and shards by the split key (a seeded hash of the id), with the sizes a permutation gave —
    the first `holdout` keys, then shards of near-equal size in key order: the histogram of the keys cuts their
    order into runs of known first rank, and each run is sorted and placed on its own."""
    s = job.split
    starts = clean.split_starts(int(counts.sum()), s.shards, s.holdout)
    firsts, first_ranks = clean.split_groups(counts, GROUP_ROWS)
    holdout_dir, shards_dir = out / "holdout.parquet.tmp", out / "shards.tmp"
    _fresh(holdout_dir)
    _fresh(shards_dir)
    placed = _over(plan, tasks.place, clean_dir=str(out / "clean.parquet.tmp"), seed=s.seed, firsts=firsts)
    written = _groups(placed, "run", tasks.write_run, rows=int(counts.sum()), row_bytes=row_bytes,
                      first_ranks=first_ranks, starts=starts, holdout_dir=str(holdout_dir),
                      shards_dir=str(shards_dir)).take_all()
    sizes = [0] * (s.shards + 1)
    for r in written:
        sizes[r["segment"]] += r["rows"]
    for k in range(s.shards + 1):   # an empty held-out set is still a table
        d = tasks.segment_dir(k, str(holdout_dir), str(shards_dir))
        if not d.exists():
            d.mkdir(parents=True)
            write_atomic(INSTRUCTION_SCHEMA.empty_table(), tasks.part(d, 0))
    return {"holdout": sizes[0], "shards": sizes[1:]}


def _report(job: DataJob, stats: list[dict], sizes: dict, out: Path) -> dict:
    """report.json as the sequential pipeline wrote it: counts per step with their first examples in table
    order, sources, languages by count (ties: first seen first), holdout and shard sizes."""
    steps = {}
    for step in tasks.STEPS:
        mine = [s["steps"][step] for s in stats if step in s["steps"]]
        if mine:
            examples = sorted((e for m in mine for e in m["examples"]), key=lambda e: e["pos"])[:3]
            steps[step] = {"removed": sum(m["removed"] for m in mine),
                           "examples": [{k: e[k] for k in ("instruction_id", "detail", "text")} for e in examples]}
    languages: dict[str, list[int]] = {}
    sources: dict[str, int] = {}
    for s in stats:
        for lang, (n, first) in s["languages"].items():
            seen = languages.setdefault(lang, [0, first])
            seen[0], seen[1] = seen[0] + n, min(seen[1], first)
        for name, n in s["sources"].items():
            sources[name] = sources.get(name, 0) + n
    return {"ingested": sum(s["ingested"] for s in stats), "kept": sum(s["kept"] for s in stats), "steps": steps,
            "sources": {src.path: sources.get(Path(src.path).name, 0) for src in job.sources},
            "languages": {k: v[0] for k, v in sorted(languages.items(), key=lambda kv: (-kv[1][0], kv[1][1]))},
            **sizes, "out_dir": str(out)}


def _fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def _swap(tmp: Path, final: Path) -> None:
    """Put a finished directory in place of the old output (a directory, or a file written by an older
    version)."""
    if final.is_dir():
        shutil.rmtree(final)
    elif final.exists():
        final.unlink()
    tmp.rename(final)
