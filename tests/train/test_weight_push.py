"""The learner's NCCL / CUDA IPC push through vLLM's own weight-transfer classes.

slow (CPU, no cluster; importing vLLM takes ~10 s): vLLM's real trainer engines, made by its factory from the
planned init info, drive our client → store → receivers, whose fake AsyncLLMs hand every payload to vLLM's
real worker-side classes (NCCL group ranks through vLLM's own rank arithmetic, update infos, IPC handles);
only the transport (NCCL communicator, broadcast, CUDA IPC export) is replaced. Plus the plan's packing and
source against vLLM's own packer and checks, and the AST signatures of the default tier against `inspect`.

gpu: `arena-ray ppo` with `weight_sync: ipc` on one GPU and `nccl` across two (NCCL cannot hold two ranks on
one GPU), end to end on a tiny model. Not run in this repository's CI (no GPU).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from types import SimpleNamespace

import pytest

from arena_ray.errors import TrainingError
from arena_ray.serving import weight_plan as wp
from arena_ray.settings.models import ModelConfig
from tests.serving.push_fakes import group
from tests.serving.vllm_source import dataclass_init, method

WT = "vllm.distributed.weight_transfer"


def tied_model():
    import torch

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(16, 4)
            self.proj = torch.nn.Linear(4, 4)
            self.lm_head = torch.nn.Linear(4, 16, bias=False)
            self.lm_head.weight = self.embed.weight  # tied, as SmolLM2's

    torch.manual_seed(0)
    return Tied()


NAMES = ["embed.weight", "proj.weight", "proj.bias", "lm_head.weight"]


@pytest.mark.slow
def test_vllms_nccl_trainer_engine_drives_every_replica(monkeypatch):
    import torch
    from vllm.distributed.weight_transfer import nccl_common, nccl_engine
    from vllm.distributed.weight_transfer.nccl_engine import NCCLWeightTransferInitInfo, NCCLWeightTransferUpdateInfo

    from arena_ray.train.weight_push import WeightPusher

    endpoints, broadcasts, joined, received = [], [], [], {0: [], 1: []}
    monkeypatch.setattr(nccl_engine, "open_trainer_endpoint", lambda info: endpoints.append(info) or
                        SimpleNamespace(destroy=lambda: None))
    real_producer = inspect.signature(nccl_engine.packed_nccl_broadcast_producer)

    def producer(**kwargs):
        real_producer.bind(**kwargs)
        broadcasts.append([name for name, _ in kwargs["iterator"]])   # drains vLLM's checked iteration
    monkeypatch.setattr(nccl_engine, "packed_nccl_broadcast_producer", producer)
    monkeypatch.setattr(torch.accelerator, "current_device_index", lambda: 0)
    monkeypatch.setattr(nccl_common, "stateless_init_process_group",
                        lambda address, port, rank, world, device: joined.append((address, port, rank, world)))

    def worker_side(replica, name, args, kwargs):
        if name == "init_weight_transfer_engine":  # each TP rank of the replica, through vLLM's own rank sums
            info = NCCLWeightTransferInitInfo(**args[0].init_info)
            for k in range(2):
                nccl_common.worker_init_process_group(info, SimpleNamespace(data_parallel_index=0, world_size=2,
                                                                            rank=k))
        if name == "update_weights":
            received[replica].append(NCCLWeightTransferUpdateInfo(**args[0].update_info).names)

    members = {r: {"replica": f"replica-{r}", "node_ip": "10.0.0.7"} for r in range(2)}
    with group(replicas=2, tp=2, hook=worker_side, requests=None) as g:
        pusher = WeightPusher("nccl", tied_model(), members, g.call, {"node_ip": "10.0.0.7"}, 2, port=29555)
        assert pusher.push(1) == {0: 1, 1: 1}
        assert pusher.push(2) == {0: 2, 1: 2}
    assert len(endpoints) == 1 and endpoints[0].world_size == 5 and endpoints[0].rank == 0  # one rendezvous
    assert sorted(rank for *_, rank, _ in joined) == [1, 2, 3, 4]      # every worker rank once, none is 0
    assert {(a, p, w) for a, p, _, w in joined} == {("127.0.0.1", 29555, 5)}
    assert broadcasts == [NAMES, NAMES]                                 # the tied lm_head too, every push
    assert received == {0: [NAMES, NAMES], 1: [NAMES, NAMES]} and g.stamps == {0: [1, 2], 1: [1, 2]}


@pytest.mark.slow
def test_vllms_ipc_trainer_engine_hands_handles_to_the_colocated_replica(monkeypatch):
    import torch
    from vllm.distributed.weight_transfer import ipc_engine
    from vllm.distributed.weight_transfer.ipc_engine import IPCWeightTransferInitInfo, IPCWeightTransferUpdateInfo

    from arena_ray.train.weight_push import WeightPusher

    monkeypatch.setattr(torch.accelerator, "current_device_index", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid="GPU-test"))
    monkeypatch.setattr(torch.cuda, "ipc_collect", lambda: None)
    monkeypatch.setattr(ipc_engine, "reduce_tensor", lambda t: (None, ("handle", tuple(t.shape))))
    monkeypatch.setenv(wp.INSECURE_SERIALIZATION, "1")   # set on the policy's replicas by serving_config
    received = []

    def worker_side(replica, name, args, kwargs):
        if name == "init_weight_transfer_engine":
            assert IPCWeightTransferInitInfo(**args[0].init_info).packed is False
        if name == "update_weights":
            received.append(IPCWeightTransferUpdateInfo(**args[0].update_info))

    here = {"node_id": "n1", "gpu_ids": ["0"]}
    with group(replicas=1, tp=1, hook=worker_side, requests=None) as g:
        with pytest.raises(TrainingError, match="CUDA IPC needs them on one GPU"):
            WeightPusher("ipc", tied_model(), {0: {"replica": "replica-0", "node_id": "n1", "gpu_ids": ["1"]}},
                         g.call, here, 1)
        pusher = WeightPusher("ipc", tied_model(), {0: {"replica": "replica-0", **here}}, g.call, here, 1)
        assert pusher.push(1) == {0: 1}
    assert received[0].names == NAMES and received[0].ipc_handles[3] == {"GPU-test": ("handle", (16, 4))}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Tensor .* exceeds buffer_size_bytes")
def test_source_and_packing_agree_with_vllm():
    import torch
    from vllm.distributed.weight_transfer.nccl_engine import (
        NCCLTrainerWeightTransferEngine,
        NCCLWeightTransferUpdateInfo,
    )
    from vllm.distributed.weight_transfer.packed_tensor import pack_tensors

    from arena_ray.train.weight_push import StateDictSource, plan_of

    model = tied_model()
    source = StateDictSource(model)
    meta = source.metadata()
    assert [m.name for m in meta] == NAMES and meta[0].dtype is torch.float32
    assert [n for n, _ in NCCLTrainerWeightTransferEngine._checked_iter(source, meta)] == NAMES  # vLLM's check
    params = plan_of(model.state_dict())
    NCCLWeightTransferUpdateInfo(**wp.update_info(params))
    for buffer in (1 << 30, 100, 40):
        it, chunks = iter(source), []
        while (chunk := pack_tensors(it, lambda item: item[1], buffer)) is not None:
            chunks.append(chunk.names)
        assert chunks == wp.packed_chunks(params, buffer), buffer


@pytest.mark.slow
def test_plan_binds_to_vllms_imported_classes_and_the_ast_reads_them_right():
    from vllm.config.weight_transfer import WeightTransferConfig
    from vllm.distributed.weight_transfer import WeightTransferTrainerFactory, base, clients
    from vllm.distributed.weight_transfer.base import WeightTransferInitRequest, WeightTransferUpdateRequest
    from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo
    from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo, NCCLWeightTransferInitInfo
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    from arena_ray.serving.weight_transfer import StoreClient

    policy = wp.serving_config(ModelConfig(engine="vllm", path="m", num_gpus=1), "nccl")
    assert "weight_transfer_config" in {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    assert WeightTransferConfig(**policy.vllm.extra["weight_transfer_config"]).backend == "nccl"
    rdv = wp.plan_rendezvous("127.0.0.1", 29500, 2, 2)
    nccl = NCCLTrainerInitInfo(**wp.trainer_init_info("nccl", rdv))
    assert nccl.is_sender and nccl.backend == "nccl" and nccl.world_size == 5
    assert IPCTrainerInitInfo(**wp.trainer_init_info("ipc")).backend == "ipc"
    payload = {"master_address": "127.0.0.1", "master_port": 29500, "rank_offset": 1, "world_size": 5, "packed": True}
    assert NCCLWeightTransferInitInfo(**wp.worker_init_info(payload, 1, 2)).rank_offset == 3
    inspect.signature(WeightTransferTrainerFactory.trainer_init).bind(nccl, client=None, source=None)
    requests = {"init": WeightTransferInitRequest(init_info={}), "update": WeightTransferUpdateRequest(update_info={})}
    for name in wp.CLIENT_METHODS:
        call = wp.engine_call(name, {"finish_weight_update": {"weight_version": "1"}}.get(name, {}), 0, 1)
        args = () if call.request is None else (requests[call.request],)
        inspect.signature(getattr(AsyncLLM, call.method)).bind(None, *args, **dict(call.kwargs))
    # StoreClient is a VLLMWeightSyncClient (vLLM's runtime-checkable protocol), with its Ray client's shutdown.
    assert isinstance(StoreClient(lambda m, p: {}), base.VLLMWeightSyncClient)
    assert hasattr(clients.RayVLLMWeightSyncClient, "shutdown_weight_transfer_engine")
    # The default tier's AST reading of vLLM's source says what inspect says of the imported code.
    for cls, name in ((AsyncLLM, "update_weights"), (AsyncLLM, "finish_weight_update"),
                      (WeightTransferTrainerFactory, "trainer_init")):
        where = cls.__module__
        assert list(method(where, cls.__name__, name).parameters) == \
            [p for p in inspect.signature(getattr(cls, name)).parameters if p not in ("self", "cls")]
    for cls in (NCCLTrainerInitInfo, NCCLWeightTransferInitInfo, IPCTrainerInitInfo):
        assert list(dataclass_init(cls.__module__, cls.__name__).parameters) == \
            list(inspect.signature(cls).parameters)


# --- settings and setup (default tier) ---

def push_config(tmp_path, policy: dict, **ppo) -> dict:
    from tests.conftest import SHARED_DATA

    return {"models": {"p": {"engine": "vllm", "path": "m", "num_gpus": 1, **policy}},
            "ppo": {"dir": str(tmp_path / "ppo"), "policy": "p", "reward": {"source": "rm", "rm_path": "rm"},
                    "prompts": {"path": str(SHARED_DATA / "instructions" / "alpaca_tiny.json"), "limit": 2}, **ppo}}


def test_a_push_needs_a_gpu_learner_at_load(tmp_path):
    from arena_ray.errors import ConfigError
    from arena_ray.settings import from_dict

    with pytest.raises(ConfigError, match="weight_sync 'nccl' needs use_gpu: true"):
        from_dict(push_config(tmp_path, {}, weight_sync="nccl"))
    assert from_dict(push_config(tmp_path, {}, weight_sync="ipc", use_gpu=True)).ppo.weight_sync == "ipc"
    with pytest.raises(ConfigError, match="no counterpart for use_gpu, weight_sync"):
        from_dict(push_config(tmp_path, {}, weight_sync="nccl", use_gpu=True, backend="openrlhf"))


def test_the_policy_side_is_checked_before_any_cluster(tmp_path):
    from arena_ray.errors import ConfigError
    from arena_ray.settings import from_dict
    from arena_ray.workflows.ppo import run_ppo

    config = from_dict(push_config(tmp_path, {"replicas": 2, "num_gpus": 0.5}, weight_sync="ipc", use_gpu=True))
    with pytest.raises(ConfigError, match=r"models\.p\.replicas and vllm\.tensor_parallel_size must be 1"):
        run_ppo(config, show_progress=False)   # no Ray started (the default tier's guard would fail it)


# --- on GPUs: the whole `arena-ray ppo` loop ---

def gpu_config(tmp_path, tiny_model_dir, transport: str, policy_gpus: float):
    from arena_ray.settings import from_dict
    from tests.conftest import SHARED_DATA
    from tests.helpers import tiny_config_dict

    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["serve"]["keep_alive"] = False   # the policy's GPU share goes back for the next test
    tiny = data["models"]["tiny"]
    tiny.update(num_gpus=policy_gpus, env={})
    tiny["vllm"].update(dtype="bfloat16", gpu_memory_utilization=0.2)   # the learner's dtype on GPU
    data["ppo"] = {"dir": str(tmp_path / "ppo"), "policy": "tiny", "steps": 2, "prompts_per_step": 2,
                   "samples_per_prompt": 4, "max_new_tokens": 8, "learning_rate": 3e-3, "use_gpu": True,
                   "weight_sync": transport,
                   "prompts": {"path": str(SHARED_DATA / "instructions" / "alpaca_tiny.json"), "limit": 8},
                   "reward": {"source": "rm", "rm_path": str(tiny_model_dir), "rm_max_length": 256}}
    return from_dict(data)


@pytest.mark.gpu
@pytest.mark.parametrize("transport,gpus,policy_gpus", [("ipc", 1, 0.5), ("nccl", 2, 1)])
def test_ppo_pushes_each_step_into_the_serving_replica(local_ray, tmp_path, tiny_model_dir, transport, gpus,
                                                       policy_gpus):
    import torch

    from arena_ray.workflows.ppo import run_ppo

    if torch.cuda.device_count() < gpus:
        pytest.skip(f"{transport} needs {gpus} GPU(s): NCCL cannot hold the learner and a replica on one GPU")
    config = gpu_config(tmp_path, tiny_model_dir, transport, policy_gpus)
    summary = run_ppo(config, show_progress=False)
    steps = summary["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    for s in steps:   # every rollout came from the version the learner held: the push reached the replica
        assert s["versions_seen"] == [s["step"] - 1] and s["stale_dropped"] == 0 and s["rollouts"] == 8
        assert math.isfinite(s["sampler_logprob_gap"]) and s["sampler_logprob_gap"] < 0.05   # bf16 both sides
    assert summary["served_version"] == 2
    # Step 1 trained at lr 3e-3: had the push not landed, step 2's rollouts (from the base weights) would be
    # far from the learner's logprobs, as the object-store test measures on CPU.
    assert steps[1]["sampler_logprob_gap"] < 0.05
