"""The README's "Run on a cluster" commands on one machine, in order: `ray start --head` (with a metrics export
port), `ray job submit` of an arena, `ray job status` / `ray job logs`, the Prometheus endpoint, the run
directory and `arena-ray report`. The job attaches to the running cluster ($RAY_ADDRESS inside the job)."""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest
import yaml

from tests.conftest import ROOT, SHARED_DATA
from tests.helpers import BIN, METRICS_PORT, submit_job, tiny_config_dict

pytestmark = pytest.mark.e2e


def test_submit_an_arena_job(tmp_path, tiny_model_dir, head_node):
    run_dir = tmp_path / "run"  # absolute: the job runs in a copy of the working dir, the run dir is shared
    config = tiny_config_dict(run_dir, tiny_model_dir, limit=1)
    job_dir = tmp_path / "job"  # the --working-dir: here just the config (the package is installed)
    job_dir.mkdir()
    (job_dir / "arena.yaml").write_text(yaml.safe_dump(config))
    env = {**head_node, "RAY_ADDRESS": "http://127.0.0.1:8265"}
    job = subprocess.run([str(BIN / "ray"), "job", "submit", "--submission-id", "arena-e2e", "--working-dir",
                          str(job_dir), "--", str(BIN / "arena-ray"), "arena", "--config", "arena.yaml"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    assert "succeeded" in job.stdout

    def ray_cli(*args):
        out = subprocess.run([str(BIN / "ray"), *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout
    assert "succeeded" in ray_cli("job", "status", "arena-e2e")
    assert "Leaderboard" in ray_cli("job", "logs", "arena-e2e")  # the driver's output is kept by the cluster
    # The arena's metrics, exported by the coordinator actor, on the head node's Prometheus endpoint.
    deadline, text = time.monotonic() + 90, ""
    while "ray_arena_judge_games_done" not in text and time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read().decode()
        time.sleep(2)
    games = re.findall(r'^ray_arena_judge_games_done_total\{[^}]*run="run"[^}]*\} (\S+)', text, re.M)
    assert games and sum(map(float, games)) == 6
    report = subprocess.run([str(BIN / "arena-ray"), "report", str(run_dir)], capture_output=True, text=True,
                            timeout=120)
    assert report.returncode == 0 and (run_dir / "report.html").exists(), report.stderr[-2000:]
    board = json.loads((run_dir / "leaderboard.json").read_text())
    assert set(board["models"]) == {"tiny", "gpt-4-0314", "gpt-3.5-turbo-0125"}
    assert len((run_dir / "battles.jsonl").read_text().splitlines()) == 3

    # Another workflow, unchanged, as a job on the same cluster: one PPO step on the tiny policy.
    config["ppo"] = {"dir": str(tmp_path / "ppo"), "policy": "tiny", "steps": 1, "prompts_per_step": 1,
                     "samples_per_prompt": 2, "max_new_tokens": 4,
                     "prompts": {"path": str(SHARED_DATA / "instructions" / "alpaca_tiny.json"), "limit": 2},
                     "reward": {"source": "rm", "rm_path": str(tiny_model_dir), "rm_max_length": 128}}
    (job_dir / "ppo.yaml").write_text(yaml.safe_dump(config))
    ppo = submit_job(head_node, job_dir, "ppo-e2e", ["ppo", "--config", "ppo.yaml"], timeout=900)
    assert ppo.returncode == 0 and "succeeded" in ppo.stdout, (ppo.stdout + ppo.stderr)[-3000:]
    summary = json.loads((tmp_path / "ppo" / "summary.json").read_text())
    assert summary["served_version"] == 1 and summary["steps"][0]["versions_seen"] == [0]
