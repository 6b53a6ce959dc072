"""`arena-ray data prepare` on real instruction files, through a real local Ray (Ray Data end to end)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_ray.cli import main
from arena_ray.data import clean, pieces
from arena_ray.data.ingest import load_instructions
from arena_ray.errors import ConfigError
from arena_ray.settings import from_dict
from arena_ray.settings.data import DataJob
from arena_ray.workflows.prepare import run_data
from tests.conftest import ROOT, SHARED_DATA

INSTR = SHARED_DATA / "instructions"
SHAREGPT = ROOT / "tests" / "fixtures" / "sharegpt_tiny.json"


def job(tmp_path, out_dir: str = "data", **cleaning) -> DataJob:
    extra = pa.table({"instruction_id": ["pq-1", "pq-2"], "text": [
        "Summarise the plot of Hamlet in three sentences for a ten-year-old reader.",
        "List five prime numbers greater than one hundred and explain how you checked them."]})
    pq.write_table(extra, tmp_path / "extra.parquet", row_group_size=1)
    return from_dict({
        "out_dir": str(tmp_path / out_dir),
        "sources": [{"path": str(INSTR / "alpaca_tiny.json"), "limit": 30},
                    {"path": str(SHAREGPT)},
                    {"path": str(tmp_path / "extra.parquet")},
                    {"path": str(INSTR / "mt_bench.jsonl"), "id_prefix": "mt:", "limit": 10},
                    {"path": str(INSTR / "vicuna_bench.jsonl"), "id_prefix": "vicuna:", "limit": 10},
                    {"path": str(INSTR / "self_instruct_seed_tasks.jsonl"), "limit": 10}],
        "clean": {"decontaminate_against": [str(INSTR / "vicuna_bench.jsonl")], **cleaning},
        "split": {"shards": 3, "holdout": 4, "seed": 1},
        "ray": {"num_cpus": 2, "include_dashboard": False},
        "annotate_batch_size": 16,
    }, schema=DataJob)


@pytest.mark.slow
def test_prepare_cleans_splits_and_reports(local_ray, tmp_path, monkeypatch, capsys):
    j = job(tmp_path)
    report = run_data(j)
    out = tmp_path / "data"
    removed = {r["instruction_id"]: r for r in pq.read_table(out / "removed.parquet").to_pylist()}
    assert removed["sg-4"]["step"] == "length"
    assert removed["sg-3"]["step"] == "language"
    assert removed["sg-2"]["step"] == "near_dup" and "sg-1" in removed["sg-2"]["detail"]
    assert removed["sg-5"]["step"] == "exact_dup"           # the same text as Alpaca's first instruction
    # Vicuna-bench is both a source and the protected benchmark: all of its 10 records are contamination.
    assert all(removed[f"vicuna:{k}"]["step"] == "contamination" for k in range(1, 11))

    ingested = pq.read_table(out / "ingested.parquet")
    assert ingested.num_rows == 30 + 5 + 2 + 10 + 10 + 10 == report["ingested"]
    assert "alpaca_tiny.json[0]" in ingested.column("locator")[0].as_py()
    clean_ids = {i.instruction_id for i in load_instructions(out / "clean.parquet")}
    assert clean_ids.isdisjoint(removed) and len(clean_ids) + len(removed) == report["ingested"]
    holdout = load_instructions(out / "holdout.parquet")
    shards = [load_instructions(out / "shards" / f"D{k}.parquet") for k in range(3)]
    flat = [i.instruction_id for i in holdout] + [i.instruction_id for s in shards for i in s]
    assert sorted(flat) == sorted(clean_ids) and len(holdout) == 4
    assert shards[0][0].source and "pq-1" in clean_ids and "mt:82" in clean_ids
    # A real overlap in the shipped data: MT-bench question 81 is Vicuna-bench question 77.
    assert removed["mt:81"]["step"] == "contamination" and "vicuna_bench.jsonl#77" in removed["mt:81"]["detail"]
    assert report["steps"]["length"]["removed"] == 1 and report["shards"] == [len(s) for s in shards]

    # Held-out set and shards follow a seeded hash of the id: each in that order, the held-out set its first ids.
    keys = {i: (int(k), i) for i, k in zip(sorted(clean_ids), clean.split_key(sorted(clean_ids), seed=1))}
    assert [i.instruction_id for i in shards[1]] == sorted((i.instruction_id for i in shards[1]), key=keys.get)
    assert max(keys[i.instruction_id] for i in holdout) < min(keys[i] for i in clean_ids - set(flat[:4]))
    assert all((out / name).is_dir() for name in ("clean.parquet", "holdout.parquet", "shards/D0.parquet"))

    # Re-running reuses the Ray Data annotations (same inputs) and gives the same split.
    stamp = (out / "annotations" / "_done.json").stat().st_mtime_ns
    again = run_data(j)
    assert (out / "annotations" / "_done.json").stat().st_mtime_ns == stamp
    assert again["shards"] == report["shards"]
    assert [i.instruction_id for i in load_instructions(out / "shards" / "D0.parquet")] == \
        [i.instruction_id for i in shards[0]]

    # Sources cut into many pieces (JSON-lines byte ranges numbered by a counting pass, Parquet slices) give
    # the same tables and report, byte for byte.
    monkeypatch.setattr(pieces, "PIECE_BYTES", 1024)
    monkeypatch.setattr(pieces, "PIECE_ROWS", 1)
    small = run_data(job(tmp_path, out_dir="small"))
    assert {k: v for k, v in small.items() if k != "out_dir"} == {k: v for k, v in report.items() if k != "out_dir"}
    for name in ("ingested.parquet", "clean.parquet", "removed.parquet", "holdout.parquet", "shards/D2.parquet"):
        assert pq.read_table(tmp_path / "small" / name).equals(pq.read_table(out / name)), name

    # Clashing ids stop the run before anything is written, naming both records (the CLI exits 3).
    cfg = tmp_path / "clash.yaml"
    cfg.write_text(json.dumps({"out_dir": str(tmp_path / "d"), "sources": [
        {"path": str(INSTR / "mt_bench.jsonl")}, {"path": str(INSTR / "mt_bench.jsonl")}]}))
    assert main(["data", "prepare", "--config", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert "mt_bench.jsonl:1" in err and "duplicate instruction id '81'" in err and "id_prefix" in err
    assert not (tmp_path / "d" / "ingested.parquet").exists()


def test_bad_threshold_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="near_dup_threshold"):
        job(tmp_path, near_dup_threshold=1.0)
