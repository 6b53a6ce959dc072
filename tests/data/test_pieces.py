"""Sources read in pieces (what the pipeline's tasks read) give exactly what the whole-file readers give: the same
records, ids, `file:line` / `file[row i]` names, limits and errors."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_ray.data import pieces, tasks
from arena_ray.data.ingest import claim_id, iter_instructions, load_instructions
from arena_ray.errors import InputError


def read(path, limit=None, prefix="", piece_bytes=256, piece_rows=3):
    """What the pipeline reads: plan, count and number JSON-lines pieces, then every piece's records."""
    plan = pieces.plan(0, str(path), id_prefix=prefix, limit=limit, piece_bytes=piece_bytes, piece_rows=piece_rows)
    if len(plan) > 1 and plan[0].kind == "lines":
        plan = pieces.number(plan, [pieces.count(p)[:2] for p in plan])
    return plan, [(i, where, inst) for p in plan for i, where, inst in pieces.records(p)]


def sequential(path, limit=None, prefix=""):
    out = []
    for n, (where, inst) in enumerate(iter_instructions(path)):
        if limit is not None and n >= limit:
            break
        out.append((n, where, type(inst)(prefix + inst.instruction_id, inst.text, inst.source, inst.category)))
    return out


def jsonl(tmp_path, n=60):
    lines = []
    for k in range(n):
        lines.append(json.dumps({"id": f"r{k}", "prompt": f"Instruction number {k}: explain topic {k} in depth."}))
        if k % 7 == 3:
            lines.append("   ")           # blank lines are not records but count as lines
    path = tmp_path / "big.jsonl"
    path.write_bytes("\r\n".join(lines).encode() + b"\n")
    return path


@pytest.mark.parametrize("limit", [None, 25, 1])
def test_json_lines_in_pieces_are_the_file(tmp_path, limit):
    path = jsonl(tmp_path)
    plan, got = read(path, limit=limit, prefix="p:")
    assert {p.kind for p in plan} == {"lines"} and len(plan) > (5 if limit is None else 0)
    assert got == sequential(path, limit=limit, prefix="p:")   # pieces past the limit are not even read


def test_parquet_row_groups_and_directories_in_slices(tmp_path):
    rows = [{"id": f"r{k}", "prompt": f"Parquet instruction {k} about gardens."} for k in range(40)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet", row_group_size=7)
    plan, got = read(tmp_path / "a.parquet", limit=30)
    assert {p.kind for p in plan} == {"rows"} and got == sequential(tmp_path / "a.parquet", limit=30)
    parts = tmp_path / "parts.parquet"
    parts.mkdir()
    for k in range(3):
        pq.write_table(pa.Table.from_pylist(rows[k * 10:(k + 1) * 10]), parts / f"part-{k:06d}.parquet",
                       row_group_size=4)
    _, got = read(parts)
    assert got == sequential(parts) and got[12][1].endswith("part-000001.parquet[row 2]")
    assert [i.instruction_id for i in load_instructions(parts)] == [r["id"] for r in rows[:30]]


def test_small_gzip_and_array_files_stay_whole(tmp_path):
    path = jsonl(tmp_path)
    assert [p.kind for p in pieces.plan(0, str(path))] == ["file"]            # under PIECE_BYTES
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    arr = tmp_path / "arr.jsonl"
    arr.write_text(json.dumps([{"id": "a", "prompt": "An array of records, not JSON lines."}] * 30))
    for f in (gz, arr, tmp_path / "missing.jsonl"):
        assert [p.kind for p in pieces.plan(0, str(f), piece_bytes=64)] == ["file"]


def test_errors_are_the_whole_file_readers(tmp_path):
    path = jsonl(tmp_path)
    text = path.read_bytes()
    bad = text.replace(b'"r40"', b'"r40",,', 1)
    path.write_bytes(bad)
    with pytest.raises(InputError) as whole:
        load_instructions(path)
    with pytest.raises(InputError) as piecewise:
        read(path)
    assert str(piecewise.value) == str(whole.value) and ":47: malformed JSON line" in str(whole.value)
    # Not UTF-8 far into the file: the sequential reader decodes first, so it names the byte before any record.
    path.write_bytes(text[:-40] + b"\xff" + text[-39:])
    with pytest.raises(InputError) as whole:
        load_instructions(path)
    counted = [pieces.count(p)[2] for p in pieces.plan(0, str(path), piece_bytes=256)]
    assert [e for e in counted if e] == [str(whole.value)] and f"byte {len(text) - 40}" in str(whole.value)


def test_first_clash_names_both_records_as_the_sequential_ingest_does():
    ids = ["a", "b", "c", "b", "a", "b"]
    where = [f"f.jsonl:{k + 1}" for k in range(len(ids))]
    table = pa.table({"instruction_id": ids, "order": list(range(len(ids))), "locator": where})
    (got,) = tasks.first_clash(table).to_pylist()
    seen: dict[str, str] = {}
    with pytest.raises(InputError) as sequential_error:
        for i, w in zip(ids, where):
            claim_id(seen, type("I", (), {"instruction_id": i})(), w, hint="; give one of the sources an id_prefix")
    assert got["error"] == str(sequential_error.value) and got["order"] == 3
    assert tasks.first_clash(table.slice(0, 3)).num_rows == 0
