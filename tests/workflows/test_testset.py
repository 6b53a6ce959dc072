"""`arena-ray testset` end to end on real instruction files: real embeddings, a real vLLM judge (tiny)
on a real local Ray cluster, resumable difficulty ratings, decontamination."""
import json

import pyarrow.parquet as pq
import pytest
import yaml

from arena_ray.cli import main
from tests.conftest import CPU_ENV, SHARED_DATA

pytestmark = pytest.mark.slow
INS = SHARED_DATA / "instructions"


def test_testset_workflow(local_ray, tmp_path, tiny_model_dir, capsys):
    train = tmp_path / "train.jsonl"
    vicuna_q1 = json.loads((INS / "vicuna_bench.jsonl").read_text().splitlines()[0])["turns"][0]
    train.write_text(json.dumps({"id": "leak", "instruction": vicuna_q1}) + "\n" +
                     json.dumps({"id": "fine", "instruction": "Compose a limerick about a cat who learns to fly."}) + "\n")
    job = {"out_dir": str(tmp_path / "ts"), "sources": [str(INS / "arena_hard_v0.1.jsonl"), str(INS / "vicuna_bench.jsonl")],
           "limit_per_source": 12, "ray": {"include_dashboard": False},
           "diverse": {"clusters": 5, "per_cluster": 2}, "hard": {"candidates": 10, "top": 4},
           "judge": {"engine": "vllm", "path": str(tiny_model_dir), "env": CPU_ENV, "max_ongoing_requests": 8,
                     "vllm": {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048,
                              "gpu_memory_utilization": 0.25}},
           "decontaminate": {"train": [str(train)], "ngram": 5}}
    config = tmp_path / "testset.yaml"
    config.write_text(yaml.safe_dump(job))
    assert main(["testset", "--quiet", "--config", str(config)]) == 0
    out = tmp_path / "ts"
    diverse = pq.read_table(out / "diverse.parquet").to_pylist()
    hard = pq.read_table(out / "hard.parquet").to_pylist()
    mixed = pq.read_table(out / "mix.parquet").to_pylist()
    assert len(diverse) == 10 and len({d["cluster"] for d in diverse}) == 5
    assert all(d["instruction_id"].split(":")[0] in ("arena_hard_v0.1", "vicuna_bench") for d in diverse)
    assert len(hard) == 4 and all(0 <= h["difficulty"] <= 10 for h in hard)  # constrained: always parses
    assert [h["difficulty"] for h in hard] == sorted((h["difficulty"] for h in hard), reverse=True)
    assert len(mixed) == len({m["instruction_id"] for m in mixed}) <= 14
    report = json.loads((out / "report.json").read_text())
    assert report["rated"] == 10 and report["unrated"] == 0
    dropped = report["decontamination"]["dropped"]
    # the leaked Vicuna question is caught only if Vicuna's question 1 is in a test set; check consistency
    test_ids = {m["instruction_id"] for m in mixed}
    assert ("vicuna_bench:1" in test_ids) == any(d["instruction_id"] == "leak" for d in dropped)
    assert all(d["instruction_id"] != "fine" for d in dropped)

    parts = sorted((out / "difficulty").glob("part-*.parquet"))
    assert main(["testset", "--quiet", "--config", str(config)]) == 0  # resume: nothing asked again
    assert sorted((out / "difficulty").glob("part-*.parquet")) == parts
    assert pq.read_table(out / "hard.parquet").to_pylist() == hard


def test_decontamination_against_benchmarks_catches_a_copy(tmp_path):
    """Protecting MT-bench: a training set containing an MT-bench question verbatim loses it (no judge)."""
    train = tmp_path / "train.jsonl"
    mt_q = json.loads((INS / "mt_bench.jsonl").read_text().splitlines()[3])["turns"][0]
    train.write_text(json.dumps({"id": "copy", "instruction": mt_q}) + "\n" +
                     json.dumps({"id": "own", "instruction": "List three uses of baking soda at home."}) + "\n")
    job = {"out_dir": str(tmp_path / "ts"), "sources": [str(INS / "alpaca_tiny.json")], "limit_per_source": 20,
           "diverse": {"clusters": 3, "per_cluster": 1}, "hard": {"enabled": False},
           "decontaminate": {"train": [str(train)], "against": [str(INS / "mt_bench.jsonl")]}}
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(job))
    assert main(["testset", "--quiet", "--config", str(config)]) == 0
    report = json.loads((tmp_path / "ts/report.json").read_text())["decontamination"]
    assert [(d["instruction_id"], d["reason"]) for d in report["dropped"]] == [("copy", "ngram")]
    kept = pq.read_table(tmp_path / "ts/train_decontaminated.parquet").to_pylist()
    assert [k["instruction_id"] for k in kept] == ["own"]
