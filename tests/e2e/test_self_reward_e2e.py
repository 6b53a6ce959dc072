"""`arena-ray self-reward` end to end on a tiny configuration (a tiny random model writes its own prompts from
real Self-Instruct seed tasks, answers them, judges itself with the rubric under constrained decoding, and is
DPO-trained; PandaLM human labels; arena-hard eval prompts with gpt-4-0314's recorded answers as the reference):
two iterations M0 → M1 → M2 on a running cluster, then a re-run that redoes nothing."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from arena_ray.serving.batch import read_rows
from arena_ray.train.registry import Registry
from tests.conftest import CPU_ENV, ROOT, SHARED_DATA
from tests.helpers import run_cli, tiny_config_dict

pytestmark = pytest.mark.e2e


def self_reward_config(tmp_path, tiny_model_dir):
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    template = yaml.safe_load((ROOT / "arena_ray" / "judging" / "templates" / "rubric-additive-v1.yaml").read_text())
    # A random model writes "Score: N" only when constrained; keep the justification short to fit its budget.
    template.update(version="rubric-additive-v1-short", output_regex="[a-z ]{0,20}\nScore: [0-5]")
    (tmp_path / "rubric.yaml").write_text(yaml.safe_dump(template))
    data["self_reward"] = {
        "dir": str(tmp_path / "sr"), "model": "tiny", "iterations": 2,
        # A random model writes Latin words only when held to a pattern; the filters then judge real text.
        "prompts": {"source": "generate", "per_iteration": 3,
                    "generate": {"seed_path": str(SHARED_DATA / "instructions" / "self_instruct_seed_tasks.jsonl"),
                                 "output_regex": "[A-Z][a-z]{2,9}( [a-z]{2,9}){5,14}\\?", "max_tokens": 96,
                                 "attempts_per_prompt": 8, "max_example_chars": 300}},
        "eval_instructions": str(SHARED_DATA / "instructions" / "arena_hard_v0.1.jsonl"),
        "reference": {"model": "gpt-4-0314",
                      "answers": str(SHARED_DATA / "answers" / "arena_hard_v0.1" / "gpt-4-0314.jsonl")},
        "samples_per_prompt": 4, "max_tokens": 16, "judge_prompt": str(tmp_path / "rubric.yaml"),
        "judge_max_tokens": 24, "constrain_format": True, "logprob_weighted": True, "agreement": {"limit": 6},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "max_length": 1024, "cpus_per_worker": 2,
                  "learning_rate": 1e-4},
        "eval_limit": 2, "version_overrides": {"env": CPU_ENV}}
    path = tmp_path / "self_reward.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_self_reward_two_iterations_and_resume(tmp_path, tiny_model_dir, head_node):
    cfg = self_reward_config(tmp_path, tiny_model_dir)
    # Attached to the session's running cluster (as `self-reward` does on a real one): models the earlier jobs
    # left serving with the same settings (the tiny judge) are reused, not started again.
    attached = {**head_node, "RAY_ADDRESS": "127.0.0.1:6379"}
    proc = run_cli(["self-reward", "--config", str(cfg)], timeout=1500, env=attached)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "sr"
    summary = json.loads((root / "summary.json").read_text())
    rows = summary["iterations"]
    assert [r["to"] for r in rows] == ["tiny@1", "tiny@2"]
    # M0 against the reference first: the base of the length-controlled win rate and the hacking guard.
    assert summary["baseline"]["battles"] == 2 and summary["baseline"]["mean_length"] > 0
    assert "length_hacking" in summary
    for t, r in enumerate(rows, start=1):
        # The model wrote this iteration's prompts; the filters kept 3 and every one was answered and judged.
        made = pq.read_table(root / f"iter{t}" / "prompts" / "prompts.parquet").to_pylist()
        assert len(made) == 3 and all(p["instruction_id"].startswith(f"gen-{t}-") for p in made)
        assert json.loads((root / f"iter{t}" / "prompts" / "done.json").read_text())["kept"] == 3
        assert r["prompts"] == 3 and r["samples"] == 12
        assert r["pairs_kept"] + r["dropped_ties"] + r["dropped_unscored"] == 3
        assert r["judgments"] == 36 and sum(r["score_histogram"].values()) == 36 - r["judgments_unparsed"]
        assert r["judge_agreement"]["pairs"] >= 4 and "spearman" in r["judge_agreement"]
        # M_t against M_{t-1}, M0 (one model at t=1) and the reference on 2 eval prompts, both orders each.
        arena = r["arena"]
        assert arena["battles"] == (4 if t == 1 else 6)
        assert set(arena["ratings"]) == {"tiny@0", r["from"], r["to"], "gpt-4-0314"}
        h2h = arena["head_to_head"]
        assert h2h["battles"] == 2 and h2h["wins"] + h2h["ties"] + h2h["losses"] == 2
        assert arena["raw_win_rate"] is not None and arena["mean_length"] > 0
        samples = read_rows(root / f"iter{t}" / "selfjudge" / "samples.jsonl")
        assert len({s.key for s in samples if s.ok}) == 12
        if r["pairs_kept"]:
            assert r["dpo"]["loss_first"] is not None
    assert {p["instruction_id"] for p in _pairs(root, 1)}.isdisjoint({p["instruction_id"] for p in _pairs(root, 2)})
    registry = Registry(root)
    assert [v.name for v in registry.versions()] == ["tiny@0", "tiny@1", "tiny@2"]
    assert "| iter | model | pairs kept |" in proc.stdout and "vs M0 (95% CI)" in proc.stdout
    # Re-run: every stage is done; nothing is asked of a model again.
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.jsonl") if "iter" in str(p)}
    again = run_cli(["self-reward", "--config", str(cfg), "--quiet"], timeout=600, env=attached)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def _pairs(root, t):
    return pq.read_table(root / f"iter{t}" / "selfjudge" / "dpo.parquet").to_pylist()
