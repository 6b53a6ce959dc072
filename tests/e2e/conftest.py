"""One running Ray head node for the whole e2e session: the tests that submit Ray jobs (and the self-rewarding
loop, which attaches to it) share it, and the model applications their jobs leave running (serve.keep_alive
in tiny_config_dict) are reused by later jobs with the same model settings."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import BIN, METRICS_PORT


@pytest.fixture(scope="session")
def head_node():
    """`ray start --head` on 127.0.0.1 (the README's "Run on a cluster"); yields the env for the ray CLI and for
    drivers that attach to it."""
    # RAY_AUTH_MODE: see README (token auth on a local head node). The subreaper setting: a replica killed
    # hard takes its vLLM engine process with it (README, "Run on a cluster").
    env = {**os.environ, "RAY_AUTH_MODE": "disabled",
           "RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper": "true"}
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "8", "--node-ip-address", "127.0.0.1",
                            "--dashboard-host", "127.0.0.1", "--metrics-export-port", str(METRICS_PORT),
                            "--system-config", '{"metrics_report_interval_ms": 1000}', "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    yield env
    # Replicas first, gracefully: each shuts its engine down; `ray stop --force` alone would orphan them.
    subprocess.run([str(BIN / "serve"), "shutdown", "-y", "--address", "http://127.0.0.1:8265"], env=env,
                   capture_output=True, timeout=120)
    subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)
