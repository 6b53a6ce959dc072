"""Replicas and resources come from config; tensor parallelism reserves one GPU bundle per rank."""
import pytest

from arena_ray import settings as cfg
from arena_ray.serving.deployments import deployment_options
from arena_ray.settings.models import ModelConfig
from tests.conftest import ROOT


def test_cpu_model_options():
    m = ModelConfig(engine="vllm", path="p", replicas=3, num_cpus=2, max_ongoing_requests=32,
                    env={"OMP_NUM_THREADS": "2"})
    o = deployment_options("smol", m)
    assert o["num_replicas"] == 3 and o["max_ongoing_requests"] == 32
    assert o["ray_actor_options"]["num_cpus"] == 2 and o["ray_actor_options"]["num_gpus"] == 0
    env = o["ray_actor_options"]["runtime_env"]["env_vars"]
    assert env["OMP_NUM_THREADS"] == "2" and env["VLLM_LOGGING_LEVEL"] == "WARNING"
    assert "placement_group_bundles" not in o


def test_tensor_parallel_judge_on_the_h100_config():
    c = cfg.load(ROOT / "configs/cluster-h100.yaml")
    judge = c.models[c.judge.model]
    o = deployment_options(c.judge.model, judge)
    assert o["placement_group_bundles"] == [{"CPU": 4, "GPU": 1}, {"GPU": 1}, {"GPU": 1}, {"GPU": 1}]
    assert o["placement_group_strategy"] == "STRICT_PACK" and o["num_replicas"] == 2
    single = deployment_options("llama-3.1-8b-instruct", c.models["llama-3.1-8b-instruct"])
    assert single["ray_actor_options"]["num_gpus"] == 1 and single["num_replicas"] == 4


def test_custom_resources_pin_replicas_to_their_nodes():
    pinned = deployment_options("m", ModelConfig(engine="replay", path="p", resources={"second_node": 1}))
    assert pinned["ray_actor_options"]["resources"] == {"second_node": 1}
    assert "resources" not in deployment_options("m", ModelConfig(engine="replay", path="p"))["ray_actor_options"]
    tp = ModelConfig(engine="vllm", path="p", num_gpus=1, resources={"h100": 1}, vllm={"tensor_parallel_size": 2})
    o = deployment_options("big", tp)
    assert o["placement_group_bundles"] == [{"CPU": 1.0, "GPU": 1, "h100": 1}, {"GPU": 1, "h100": 1}]
    assert "resources" not in o["ray_actor_options"]


@pytest.mark.gpu
def test_cuda_vllm_engine_generates(tiny_model_dir):
    """On a GPU machine: the same VLLMEngine on CUDA vLLM (tiny model), with the judge's constrained format."""
    import asyncio

    from arena_ray.judging.prompts import load_template
    from arena_ray.records import GenerationRequest, SamplingSpec
    from arena_ray.serving.engines import VLLMEngine

    engine = VLLMEngine(ModelConfig(engine="vllm", path=str(tiny_model_dir), max_tokens=16,
                                    vllm={"dtype": "bfloat16", "gpu_memory_utilization": 0.3, "max_model_len": 2048}))
    template = load_template("pairwise-v1")
    out = asyncio.run(engine.generate(GenerationRequest(
        "g", template.messages("Q?", "A1", "A2"), SamplingSpec(max_tokens=16, regex=template.output_regex,
                                                              top_logprobs=5))))
    engine.shutdown()
    assert out.completion_tokens and out.logprobs
    from arena_ray.judging.parse import parse_pairwise
    assert parse_pairwise(out.text).ok
