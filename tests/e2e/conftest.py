"""A running Ray head node for the e2e tests that submit Ray jobs."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import BIN, METRICS_PORT


@pytest.fixture
def head_node():
    """`ray start --head` on 127.0.0.1 (the README's "Run on a cluster"); yields the env for the ray CLI."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # see README: token auth on a local head node
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "8", "--node-ip-address", "127.0.0.1",
                            "--dashboard-host", "127.0.0.1", "--metrics-export-port", str(METRICS_PORT),
                            "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    yield env
    subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)
