"""The README's "Run on a cluster" commands on one machine, in order: `ray start --head` (with a metrics export
port), `ray job submit` of an arena, `ray job status` / `ray job logs`, the Prometheus endpoint, the run
directory and `arena-ray report`. The job attaches to the running cluster ($RAY_ADDRESS inside the job)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers import tiny_config_dict

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
METRICS_PORT = 8089


@pytest.fixture
def head_node(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # see README: token auth on a local head node
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "8", "--node-ip-address", "127.0.0.1",
                            "--dashboard-host", "127.0.0.1", "--metrics-export-port", str(METRICS_PORT),
                            "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    yield env
    subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


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
