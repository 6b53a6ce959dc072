"""What each Ray Data task of the instruction pipeline does: functions of an Arrow table (a batch of pieces or
one group of rows) that read and write Parquet parts and return small tables. No ray: workflows/prepare.py
chains them into Ray Data operations.

Every table of the pipeline is a directory of parts, one per piece (`part-000012.parquet`): a piece's rows in
the ingested table, its annotations and its cleaned rows are parts of the same number, row for row, so a task
given a piece (or the rows of one piece after a shuffle) reads just those parts. A row's `pos` (piece << 32 |
row) is its place in the table.
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arena_ray.data import clean, pieces
from arena_ray.errors import InputError
from arena_ray.records import INSTRUCTION_SCHEMA, Instruction, to_table
from arena_ray.records.tables import write_atomic
from arena_ray.settings.data import CleanConfig

INGESTED_SCHEMA = pa.schema([("instruction_id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                             ("category", pa.string()), ("locator", pa.string())])
ANNOTATION_SCHEMA = pa.schema([("chars", pa.int64()), ("language", pa.string()),
                               ("language_confidence", pa.float64()), ("exact_key", pa.string()),
                               ("minhash", pa.list_(pa.uint32()))])
REMOVED_SCHEMA = pa.schema([(n, pa.string()) for n in ("instruction_id", "step", "detail")])
# A removal decided by a shuffle (exact or near duplicate), or (row -1) a marker that gives every piece a group.
STATUS_SCHEMA = pa.schema([("piece", pa.int32()), ("row", pa.int32()), ("step", pa.string()),
                           ("detail", pa.string())])
STEPS = ("length", "language", "exact_dup", "near_dup", "contamination")
ROW_BITS = 32


def part(directory: str | Path, piece: int, prefix: str = "") -> Path:
    return Path(directory) / f"part-{prefix}{piece:06d}.parquet"


def _piece(batch: pa.Table) -> tuple[int, pieces.Piece]:
    row = batch.slice(0, 1).to_pylist()[0]
    return row["piece"], pieces.Piece.from_row(row)


def _pos(piece: int, rows: np.ndarray) -> np.ndarray:
    return (np.int64(piece) << np.int64(ROW_BITS)) | rows.astype(np.int64)


def _bucket(keys: Sequence[str], buckets: int) -> list[int]:
    return [zlib.crc32(k.encode()) % buckets for k in keys]


# --- ingest

def count_piece(batch: pa.Table) -> pa.Table:
    k, piece = _piece(batch)
    lines, records, error = pieces.count(piece)
    return pa.table({"piece": [k], "lines": [lines], "records": [records], "error": [error]},
                    schema=pa.schema([("piece", pa.int64()), ("lines", pa.int64()), ("records", pa.int64()),
                                      ("error", pa.string())]))


ERROR_SCHEMA = pa.schema([("order", pa.int64()), ("rank", pa.int64()), ("error", pa.string())])
INGEST_STATS_SCHEMA = pa.schema([("piece", pa.int64()), ("rows", pa.int64()), ("bytes", pa.int64()),
                                 ("digest", pa.string()), *ERROR_SCHEMA])


def ingest_piece(batch: pa.Table, parts: str) -> pa.Table:
    """Parse one piece into its part of the ingested table. A bad record does not raise: its position and
    message come back, so the driver can report the first one in table order, as a sequential read would."""
    k, piece = _piece(batch)
    rows, error = [], None
    try:
        found = pieces.records(piece)
    except InputError as err:      # file-level: before every record of the source
        error = (piece.order(-1), piece.start, str(err))
    else:
        try:
            for _, where, inst in found:
                rows.append((inst, where))
        except InputError as err:
            error = (piece.order(piece.first_record + len(rows)), 0, str(err))
    table = pa.table({"instruction_id": [i.instruction_id for i, _ in rows], "text": [i.text for i, _ in rows],
                      "source": [i.source for i, _ in rows], "category": [i.category for i, _ in rows],
                      "locator": [w for _, w in rows]}, schema=INGESTED_SCHEMA)
    write_atomic(table, part(parts, k))
    digest = hashlib.sha256(json.dumps([[i.instruction_id, i.text] for i, _ in rows]).encode()).hexdigest()
    order, rank, message = error or (None, None, None)
    return pa.table({"piece": [k], "rows": [len(rows)], "bytes": [sum(len(i.text) for i, _ in rows)],
                     "digest": [digest], "order": [order], "rank": [rank], "error": [message]},
                    schema=INGEST_STATS_SCHEMA)


def piece_ids(batch: pa.Table, parts: str, buckets: int) -> pa.Table:
    k, piece = _piece(batch)
    t = pq.read_table(part(parts, k), columns=["instruction_id", "locator"])
    ids = t["instruction_id"].to_pylist()
    return pa.table({"bucket": pa.array(_bucket(ids, buckets), pa.int32()),
                     "order": pa.array(piece.order(piece.first_record + np.arange(len(ids))), pa.int64()),
                     "instruction_id": t["instruction_id"], "locator": t["locator"]})


def first_clash(group: pa.Table) -> pa.Table:
    """The first record (in table order) whose id an earlier record already has, named as the sequential
    ingest names it."""
    rows = sorted(zip(group["instruction_id"].to_pylist(), group["order"].to_pylist(),
                      group["locator"].to_pylist()))
    clashes = []
    for k in range(1, len(rows)):
        if rows[k][0] == rows[k - 1][0] and (k == 1 or rows[k - 2][0] != rows[k][0]):  # a second occurrence
            i, order, where = rows[k]
            clashes.append((order, f"{where}: duplicate instruction id '{i}' (first at {rows[k - 1][2]}); give "
                                   f"one of the sources an id_prefix"))
    first = [min(clashes)] if clashes else []
    return pa.table({"order": [o for o, _ in first], "rank": [0 for _ in first], "error": [e for _, e in first]},
                    schema=ERROR_SCHEMA)


# --- annotate

def annotate_piece(batch: pa.Table, parts: str, target: str, num_perm: int, shingle: int,
                   batch_size: int) -> pa.Table:
    """Language, length, exact key and MinHash signature of every row of a piece (clean.annotate's values),
    `batch_size` rows per row group: what a task holds at once."""
    k, _ = _piece(batch)
    t = pq.read_table(part(parts, k), columns=["instruction_id", "text"])
    path = part(target, k)
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, ANNOTATION_SCHEMA) as writer:
        for lo in range(0, max(t.num_rows, 1), batch_size):
            texts = t["text"].slice(lo, batch_size).to_pylist()
            languages = [clean.language(text) for text in texts]
            signatures = clean.minhashes(texts, num_perm, shingle)
            writer.write_table(pa.table({
                "chars": [len(text) for text in texts], "language": [lang for lang, _ in languages],
                "language_confidence": [p for _, p in languages], "exact_key": [clean.exact_key(x) for x in texts],
                "minhash": pa.FixedSizeListArray.from_arrays(signatures.ravel(), num_perm).cast(
                    pa.list_(pa.uint32()))}, schema=ANNOTATION_SCHEMA))
    os.replace(tmp, path)
    return pa.table({"piece": [k], "rows": [t.num_rows]})


def _row_removal(chars: int, lang: str, confidence: float, c: CleanConfig) -> tuple[str, str] | None:
    detail = clean.length_detail(chars, c.min_chars, c.max_chars)
    if detail is not None:
        return "length", detail
    detail = clean.language_detail(lang, confidence, c.languages, c.language_min_confidence)
    return None if detail is None else ("language", detail)


def _alive(t: pa.Table, c: CleanConfig) -> np.ndarray:
    """Rows that pass the row-local steps (length, language): the ones the duplicate steps see."""
    return np.array([_row_removal(n, lang, p, c) is None for n, lang, p in
                     zip(t["chars"].to_pylist(), t["language"].to_pylist(), t["language_confidence"].to_pylist())],
                    dtype=bool)


# --- exact duplicates: rows grouped by exact key

def exact_rows(batch: pa.Table, parts: str, annotations: str, c: CleanConfig, buckets: int) -> pa.Table:
    k, _ = _piece(batch)
    notes = pq.read_table(part(annotations, k), columns=["chars", "language", "language_confidence", "exact_key"])
    alive = np.flatnonzero(_alive(notes, c))
    ids = pq.read_table(part(parts, k), columns=["instruction_id"])["instruction_id"].take(alive)
    keys = notes["exact_key"].take(alive)
    return pa.table({"bucket": pa.array(_bucket(keys.to_pylist(), buckets), pa.int32()),
                     "pos": pa.array(_pos(k, alive), pa.int64()), "instruction_id": ids, "exact_key": keys})


def _status(pos: Sequence[int], step: str, details: Sequence[str]) -> pa.Table:
    pos = np.asarray(pos, dtype=np.int64)
    return pa.table({"piece": pa.array(pos >> ROW_BITS, pa.int32()),
                     "row": pa.array(pos & ((1 << ROW_BITS) - 1), pa.int32()),
                     "step": pa.array([step] * len(pos), pa.string()), "detail": pa.array(details, pa.string())},
                    schema=STATUS_SCHEMA)


def exact_status(group: pa.Table) -> pa.Table:
    found = clean.exact_duplicates(group["pos"].to_pylist(), group["instruction_id"].to_pylist(),
                                   group["exact_key"].to_pylist())
    return _status([p for p, _ in found], "exact_dup", [d for _, d in found])


# --- near duplicates: rows grouped by LSH band key, then the few with a near twin

def band_rows(batch: pa.Table, annotations: str, c: CleanConfig, bands: int, rows: int, buckets: int) -> pa.Table:
    """One row per (record, band) of every record the exact step keeps candidates for."""
    k, _ = _piece(batch)
    notes = pq.read_table(part(annotations, k))
    alive = np.flatnonzero(_alive(notes, c))
    sig = _signatures(notes["minhash"].take(alive), c.num_perm)
    keys = clean.band_keys(sig, bands, rows).ravel()
    return pa.table({"bucket": pa.array((keys % np.uint64(buckets)).astype(np.int32)), "band": pa.array(keys),
                     "pos": pa.array(np.repeat(_pos(k, alive), bands))})


def _signatures(column: pa.ChunkedArray, num_perm: int) -> np.ndarray:
    flat = pc.list_flatten(column)
    return np.asarray(flat, dtype=np.uint32).reshape(-1, num_perm)


def band_members(group: pa.Table) -> pa.Table:
    """The rows of bands that more than one record fell into: the candidate pairs' members."""
    band = group["band"].to_numpy()
    keys, counts = np.unique(band, return_counts=True)
    shared = np.isin(band, keys[counts > 1])
    pos = group["pos"].to_numpy()[shared]
    return pa.table({"piece": pa.array(pos >> ROW_BITS, pa.int32()), "band": pa.array(band[shared]),
                     "pos": pa.array(pos)})


def member_signatures(group: pa.Table, parts: str, annotations: str, buckets: int) -> pa.Table:
    """The candidates of one piece with what the pair check needs (id, exact key, signature), read from the
    piece's own parts: the signatures are never shuffled, only the candidates are."""
    k = group["piece"][0].as_py()
    rows = (group["pos"].to_numpy() & ((1 << ROW_BITS) - 1)).astype(np.int64)
    notes = pq.read_table(part(annotations, k), columns=["exact_key", "minhash"]).take(rows)
    ids = pq.read_table(part(parts, k), columns=["instruction_id"])["instruction_id"].take(rows)
    band = group["band"].to_numpy()
    return pa.table({"bucket": pa.array((band % np.uint64(buckets)).astype(np.int32)), "band": group["band"],
                     "pos": group["pos"], "instruction_id": ids, "exact_key": notes["exact_key"],
                     "minhash": notes["minhash"]})


EDGE_SCHEMA = pa.schema([("a", pa.int64()), ("a_id", pa.string()), ("b", pa.int64()), ("b_id", pa.string()),
                         ("jaccard", pa.float64())])


def near_edges(group: pa.Table, threshold: float, num_perm: int, drop_exact: bool) -> pa.Table:
    found = clean.near_duplicate_edges(group["band"].to_numpy(), group["pos"].to_numpy(),
                                       group["instruction_id"].to_pylist(), group["exact_key"].to_pylist(),
                                       _signatures(group["minhash"], num_perm), threshold, drop_exact)
    return pa.Table.from_pylist([dict(zip(EDGE_SCHEMA.names, e)) for e in found], schema=EDGE_SCHEMA)


def near_status(group: pa.Table) -> pa.Table:
    found = clean.greedy_near_duplicates(zip(*(group[n].to_pylist() for n in EDGE_SCHEMA.names)))
    return _status([p for p, _ in found], "near_dup", [d for _, d in found])


# --- assemble: each piece's rows with every decision, written as its parts of clean and removed

def assemble_piece(group: pa.Table, parts: str, annotations: str, clean_dir: str, removed_dir: str,
                   c: CleanConfig, protected: Sequence[Instruction], seed: int) -> pa.Table:
    """Charge every row of one piece to its first removing step (length, language, the duplicate steps the
    shuffles decided, contamination against the broadcast protected set) or keep it; write the piece's parts
    of clean.parquet and removed.parquet; return what the report needs (counts, first examples per step, its
    languages and sources) and the split-key histogram of its kept rows."""
    k = group["piece"][0].as_py()
    decided = {r: (s, d) for r, s, d in zip(group["row"].to_pylist(), group["step"].to_pylist(),
                                            group["detail"].to_pylist()) if r >= 0}
    rows = pq.read_table(part(parts, k)).to_pylist()
    notes = pq.read_table(part(annotations, k), columns=["chars", "language", "language_confidence"]).to_pylist()
    removal: dict[int, tuple[str, str]] = {}
    for r, n in enumerate(notes):
        found = _row_removal(n["chars"], n["language"], n["language_confidence"], c) or decided.get(r)
        if found:
            removal[r] = found
    insts = [Instruction(x["instruction_id"], x["text"], x["source"], x["category"]) for x in rows]
    if protected:
        candidates = [insts[r] for r in range(len(insts)) if r not in removal]
        row_of = {insts[r].instruction_id: r for r in range(len(insts)) if r not in removal}
        for found in clean.contamination_removals(candidates, protected, c.contamination_ngram,
                                                  c.contamination_threshold):
            removal[row_of[found.instruction_id]] = ("contamination", found.detail)
    kept = [i for r, i in enumerate(insts) if r not in removal]
    write_atomic(to_table(kept, Instruction), part(clean_dir, k))
    steps: dict[str, dict] = {}
    for s, step in enumerate(STEPS):
        mine = sorted(r for r, (name, _) in removal.items() if name == step)
        if not mine:
            continue
        write_atomic(pa.table({"instruction_id": [insts[r].instruction_id for r in mine], "step": [step] * len(mine),
                               "detail": [removal[r][1] for r in mine]}, schema=REMOVED_SCHEMA),
                     part(removed_dir, k, prefix=f"{s}-"))
        steps[step] = {"removed": len(mine), "examples": [
            {"pos": int(_pos(k, np.array([r]))[0]), "instruction_id": insts[r].instruction_id,
             "detail": removal[r][1], "text": insts[r].text[:160]} for r in mine[:3]]}
    languages: dict[str, list[int]] = {}
    for r, n in enumerate(notes):
        languages.setdefault(n["language"], [0, int(_pos(k, np.array([r]))[0])])[0] += 1
    sources: dict[str, int] = {}
    for i in insts:
        sources[i.source] = sources.get(i.source, 0) + 1
    return pa.table({"piece": [k], "ingested": [len(insts)], "kept": [len(insts) - len(removal)],
                     "stats": [json.dumps({"steps": steps, "languages": languages, "sources": sources})],
                     "hist": [split_histogram([i.instruction_id for i in kept], seed).tobytes()]})


# --- split: a hash of each id places it; held-out set and shards in the order of that hash

HIST_BITS = 12


def split_histogram(ids: Sequence[str], seed: int) -> np.ndarray:
    """How many of these ids fall into each of 2^12 ranges of the split key: from such counts alone the driver
    cuts the key order into runs whose ranks it knows."""
    top = (clean.split_key(ids, seed) >> np.uint64(64 - HIST_BITS)).astype(np.int64)
    return np.bincount(top, minlength=1 << HIST_BITS).astype(np.int64)


def place(batch: pa.Table, clean_dir: str, seed: int, firsts: Sequence[int]) -> pa.Table:
    """A piece's kept rows with their split key and the run (clean.split_groups) of key ranges each falls
    into."""
    k, _ = _piece(batch)
    rows = pq.read_table(part(clean_dir, k))
    keys = clean.split_key(rows["instruction_id"].to_pylist(), seed)
    top = (keys >> np.uint64(64 - HIST_BITS)).astype(np.int64)
    run = np.searchsorted(np.asarray(firsts, dtype=np.int64), top, side="right") - 1
    return rows.append_column("key", pa.array(keys, pa.uint64())).append_column("run", pa.array(run, pa.int64()))


def segment_dir(segment: int, holdout_dir: str, shards_dir: str) -> Path:
    return Path(holdout_dir) if segment == 0 else Path(shards_dir) / f"D{segment - 1}.parquet"


def write_run(group: pa.Table, first_ranks: Sequence[int], starts: Sequence[int], holdout_dir: str,
              shards_dir: str) -> pa.Table:
    """One run of key ranges, sorted by (split key, id): its rows' ranks follow from the run's first rank, and
    the shard starts say where each goes. Written as part <run> of the held-out set or a shard, so the parts of
    each sort by name as their rows do."""
    run = group["run"][0].as_py()
    rows = group.sort_by([("key", "ascending"), ("instruction_id", "ascending")])
    segment = np.searchsorted(np.asarray(starts), first_ranks[run] + np.arange(rows.num_rows), side="right")
    out = []
    for seg in np.unique(segment):
        mine = rows.filter(pa.array(segment == seg))
        d = segment_dir(int(seg), holdout_dir, shards_dir)
        d.mkdir(parents=True, exist_ok=True)
        write_atomic(mine.select(INSTRUCTION_SCHEMA.names).cast(INSTRUCTION_SCHEMA), part(d, run))
        out.append((int(seg), mine.num_rows))
    return pa.table({"segment": [s for s, _ in out], "rows": [n for _, n in out]},
                    schema=pa.schema([("segment", pa.int64()), ("rows", pa.int64())]))
