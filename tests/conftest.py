"""Shared fixtures: tiny random models built from a config (with the real SmolLM2 tokenizer), and one real
local Ray cluster per test session for the tiers that run Ray (slow, faults, e2e)."""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SMOLLM2 = ROOT / ".models" / "SmolLM2-135M-Instruct"

# vLLM on these CPU machines (MODELS.md): small KV cache, no reserved core, quiet logs.
CPU_ENV = {"OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_gpu = torch.cuda.is_available()
    except Exception:
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """The real SmolLM2 HF folder (prepared by scripts/setup.sh, or here into a temp dir)."""
    if (SMOLLM2 / "config.json").exists():
        return SMOLLM2
    from arena_ray.workflows.models import prepare
    return prepare("SmolLM2-135M-Instruct", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_dir) -> Path:
    from arena_ray.workflows.models import build_tiny
    return build_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama", smollm2_dir)


RAY_TIERS = ("slow", "e2e", "faults", "gpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LocalCluster:
    metrics_port: int   # the node's Prometheus endpoint
    serve_port: int     # Serve's HTTP proxy (on 127.0.0.1)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray cluster (and Serve) for the whole session. Every in-process test that runs Ray work joins
    it, and the model applications tests leave running (tiny_config_dict sets serve.keep_alive) are reused by
    later tests whose model settings are the same: one set of served models per tier."""
    import ray
    from ray import serve

    # A killed replica must not orphan its vLLM engine process (the embedded cluster sets this too).
    os.environ.setdefault("RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper", "true")
    cluster = LocalCluster(metrics_port=free_port(), serve_port=free_port())
    # Workers report metrics every second (not every 10 s): a short test arena's coordinator would otherwise
    # end before its first report.
    ray.init(address="local", num_cpus=8, include_dashboard=False, namespace="arena_ray_tests",
             _metrics_export_port=cluster.metrics_port, _system_config={"metrics_report_interval_ms": 1000})
    serve.start(http_options={"host": "127.0.0.1", "port": cluster.serve_port})
    yield cluster
    serve.shutdown()
    ray.shutdown()


def _ray_up() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.fixture(autouse=True)
def _pure_tests_start_no_ray(request):
    """The default tier is pure code and fakes: a test there that starts a Ray session is mis-marked."""
    before = _ray_up()
    yield
    if not before and _ray_up() and not any(m in request.keywords for m in RAY_TIERS):
        pytest.fail("this test started Ray: mark it slow (or e2e/faults) so the default tier stays pure")
