"""The README's cluster path on one machine: `ray start --head`, `ray job submit` of an arena, outputs read
back. The job attaches to the running cluster ($RAY_ADDRESS inside the job) instead of starting its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers import tiny_config_dict

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture
def head_node(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # see README: token auth on a local head node
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "8", "--node-ip-address", "127.0.0.1",
                            "--dashboard-host", "127.0.0.1", "--disable-usage-stats"],
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
    job = subprocess.run([str(BIN / "ray"), "job", "submit", "--working-dir", str(job_dir), "--",
                          str(BIN / "arena-ray"), "arena", "--quiet", "--config", "arena.yaml"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    assert "succeeded" in job.stdout
    board = json.loads((run_dir / "leaderboard.json").read_text())
    assert set(board["models"]) == {"tiny", "gpt-4-0314", "gpt-3.5-turbo-0125"}
    assert len((run_dir / "battles.jsonl").read_text().splitlines()) == 3
