"""Shared fixtures: tiny random models built from a config (with the real SmolLM2 tokenizer), and a
real local Ray cluster for integration tests."""
from __future__ import annotations

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


@pytest.fixture(scope="module")
def local_ray():
    import ray
    from ray import serve
    ray.init(num_cpus=8, include_dashboard=False, namespace="arena_ray_tests")
    yield ray
    serve.shutdown()
    ray.shutdown()
