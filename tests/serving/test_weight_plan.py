"""The NCCL / CUDA IPC weight push as planned (serving/weight_plan.py, pure): group ranks and world size, what the
trainer and each replica pass to vLLM, which parameters in which order and packing, and which settings allow
it. Every argument is bound to the installed vLLM's own signature or dataclass, read from its source
(tests/serving/vllm_source.py): a renamed argument fails here."""
from __future__ import annotations

import ast
import base64
import pickle

import pytest

from arena_ray.serving import weight_plan as wp
from arena_ray.settings.models import ModelConfig
from arena_ray.settings.vllm_args import engine_arg_names
from tests.serving.vllm_source import dataclass_init, literal_choices, method, methods, needs_vllm, registered

WT = "vllm.distributed.weight_transfer"
NCCL, IPC, BASE, FACTORY = f"{WT}.nccl_engine", f"{WT}.ipc_engine", f"{WT}.base", f"{WT}.factory"
ASYNC_LLM = "vllm.v1.engine.async_llm"


def nccl_worker_payload(rdv: wp.Rendezvous) -> dict:
    """What vLLM's NCCL trainer engine hands its client's init_weight_transfer_engine (nccl_engine.trainer_init:
    worker_init_payload of an NCCLWeightTransferInitInfo with rank_offset 1, unset fields dropped)."""
    return {"master_address": rdv.master_address, "master_port": rdv.master_port, "rank_offset": 1,
            "world_size": rdv.world_size, "packed": True, "packed_buffer_size_bytes": 1 << 30, "packed_num_buffers": 2}


@pytest.mark.parametrize("replicas,tp", [(1, 1), (2, 1), (2, 2), (3, 4)])
def test_group_ranks_cover_trainer_and_every_worker_once(replicas, tp):
    rdv = wp.plan_rendezvous("10.0.0.1", 29500, replicas, tp)
    assert rdv.world_size == 1 + replicas * tp
    workers = [rank for r in range(replicas) for rank in rdv.ranks(r)]
    assert sorted(workers) == list(range(1, rdv.world_size)) and wp.TRAINER_RANK not in workers
    for r in range(replicas):  # what each replica's TP rank k joins as: vLLM adds k to the rank_offset
        info = wp.worker_init_info(nccl_worker_payload(rdv), r, tp)
        assert [info["rank_offset"] + k for k in range(tp)] == list(rdv.ranks(r))
        assert info["world_size"] == rdv.world_size and info["master_port"] == 29500


def test_rendezvous_refuses_what_cannot_form_a_group():
    with pytest.raises(ValueError, match="TCP port"):
        wp.plan_rendezvous("h", 0, 1, 1)
    with pytest.raises(ValueError, match=">= 1"):
        wp.plan_rendezvous("h", 1234, 0, 1)
    with pytest.raises(ValueError, match="replica 2"):
        wp.plan_rendezvous("h", 1234, 2, 1).ranks(2)
    small = {**nccl_worker_payload(wp.plan_rendezvous("h", 1234, 1, 2)), "world_size": 3}
    with pytest.raises(ValueError, match="needs ranks up to 4"):
        wp.worker_init_info(small, 1, 2)   # a second TP-2 replica does not fit a group of 3
    assert wp.worker_init_info({"packed": False}, 5, 1) == {"packed": False}   # ipc: no group, nothing to place
    assert wp.rendezvous_address("10.0.0.1", ["10.0.0.1", "10.0.0.1"]) == "127.0.0.1"
    assert wp.rendezvous_address("10.0.0.1", ["10.0.0.1", "10.0.0.2"]) == "10.0.0.1"


@needs_vllm
def test_init_infos_bind_to_vllms_dataclasses():
    rdv = wp.plan_rendezvous("127.0.0.1", 29500, 2, 2)
    dataclass_init(NCCL, "NCCLTrainerInitInfo").bind(**wp.trainer_init_info("nccl", rdv))
    dataclass_init(IPC, "IPCTrainerInitInfo").bind(**wp.trainer_init_info("ipc"))
    # Our payload keeps every field vLLM's trainer sent, with our offset: vLLM's worker-side init info takes it.
    worker = dataclass_init(NCCL, "NCCLWeightTransferInitInfo")
    assert set(nccl_worker_payload(rdv)) <= set(worker.parameters)
    worker.bind(**wp.worker_init_info(nccl_worker_payload(rdv), 1, 2))
    dataclass_init(IPC, "IPCWeightTransferInitInfo").bind(**wp.worker_init_info({"packed": False}, 0, 1))
    dataclass_init(BASE, "WeightTransferInitRequest").bind(init_info={})
    dataclass_init(BASE, "WeightTransferUpdateRequest").bind(update_info={})
    with pytest.raises(ValueError, match="not a weight-transfer backend"):
        wp.trainer_init_info("object_store")
    with pytest.raises(ValueError, match="rendezvous"):
        wp.trainer_init_info("nccl")


@needs_vllm
def test_trainer_side_goes_through_vllms_factory_and_client_protocol():
    assert {"nccl", "ipc"} <= set(registered(FACTORY, "WeightTransferTrainerFactory"))
    assert {"nccl", "ipc"} <= set(registered(FACTORY, "WeightTransferEngineFactory"))
    method(FACTORY, "WeightTransferTrainerFactory", "trainer_init").bind(object(), client=object(), source=object())
    method(BASE, "TrainerWeightTransferEngine", "send_weights").bind()
    # The client's methods are vLLM's VLLMWeightSyncClient protocol (plus the shutdown its Ray client has).
    protocol = methods(BASE, "VLLMWeightSyncClient")
    assert protocol <= set(wp.CLIENT_METHODS)
    assert set(wp.CLIENT_METHODS) - protocol <= methods(f"{WT}.clients", "RayVLLMWeightSyncClient")


@needs_vllm
@pytest.mark.parametrize("name", wp.CLIENT_METHODS)
def test_each_client_call_is_one_asyncllm_call(name):
    payload = {"init_weight_transfer_engine": {"packed": False}, "update_weights": {"names": []},
               "finish_weight_update": {"weight_version": "3"}}.get(name)
    call = wp.engine_call(name, payload, 0, 1)
    args = () if call.request is None else (object(),)
    method(ASYNC_LLM, "AsyncLLM", call.method).bind(*args, **dict(call.kwargs))
    if name == "finish_weight_update":
        assert dict(call.kwargs) == {"weight_version": "3"}
    with pytest.raises(ValueError, match="not a weight-sync call"):
        wp.engine_call("load_weights", None, 0, 1)


def tied_params() -> list[wp.Param]:
    return wp.param_plan([("model.embed_tokens.weight", "torch.bfloat16", (32, 8), 512),
                          ("model.layers.0.mlp.up_proj.weight", "torch.bfloat16", (16, 8), 256),
                          ("model.norm.weight", "torch.bfloat16", (8,), 16),
                          ("lm_head.weight", "torch.bfloat16", (32, 8), 512)])   # the embeddings, tied


@needs_vllm
def test_every_name_in_state_dict_order_as_vllms_update_info():
    params = tied_params()
    info = wp.update_info(params)
    assert info["names"][0] == "model.embed_tokens.weight" and info["names"][-1] == "lm_head.weight"
    assert info["dtype_names"] == ["bfloat16"] * 4 and info["shapes"][2] == [8]
    dataclass_init(NCCL, "NCCLWeightTransferUpdateInfo").bind(**info)
    dataclass_init(BASE, "ParamMeta").bind(params[0].name, params[0].dtype, params[0].shape)
    with pytest.raises(ValueError, match="twice"):
        wp.param_plan([("a", "float32", (1,), 4), ("a", "float32", (1,), 4)])
    with pytest.raises(ValueError, match="no parameters"):
        wp.param_plan([])


def test_packed_chunks_close_past_the_buffer():
    params = tied_params()   # 512, 256, 16, 512 bytes
    assert wp.packed_chunks(params, 1 << 30) == [[p.name for p in params]]
    assert [len(c) for c in wp.packed_chunks(params, 600)] == [2, 2]      # 768 > 600 closes; 528 is the rest
    assert [len(c) for c in wp.packed_chunks(params, 100)] == [1, 1, 2]   # 16 stays open, 16 + 512 closes


@needs_vllm
def test_ipc_handles_travel_pickled_as_vllms_field():
    handles = [{"GPU-1234": ("rebuild", (2, 3), 7)}]
    info = {"names": ["w"], "dtype_names": ["float32"], "shapes": [[2, 3]], "ipc_handles": handles}
    wire = wp.wire_update_info(info)
    assert "ipc_handles" not in wire and pickle.loads(base64.b64decode(wire["ipc_handles_pickled"])) == handles
    dataclass_init(IPC, "IPCWeightTransferUpdateInfo").bind(**wire)
    assert wp.wire_update_info([info])[0] == wire
    nccl = {"names": ["w"], "dtype_names": ["float32"], "shapes": [[2, 3]]}
    assert wp.wire_update_info(nccl) is nccl


def policy(**kw) -> ModelConfig:
    return ModelConfig.model_validate({"engine": "vllm", "path": "m", "num_gpus": 1, **kw})


@needs_vllm
def test_serving_config_switches_on_vllms_weight_transfer_backend():
    base = policy(vllm={"extra": {"kv_cache_dtype": "auto"}}, env={"A": "1"})
    assert wp.serving_config(base, "object_store") is base
    nccl = wp.serving_config(base, "nccl")
    assert nccl.vllm.extra == {"kv_cache_dtype": "auto", "weight_transfer_config": {"backend": "nccl"}}
    assert nccl.env == {"A": "1"} and base.vllm.extra == {"kv_cache_dtype": "auto"}   # the config is not changed
    assert wp.serving_config(base, "ipc").env == {"A": "1", wp.INSECURE_SERIALIZATION: "1"}
    assert ModelConfig.model_validate(nccl.model_dump(mode="json")) == nccl   # as the replica reads it back
    assert "weight_transfer_config" in engine_arg_names()   # an AsyncEngineArgs field of the installed vLLM
    assert set(wp.PUSHED) <= literal_choices("vllm.config.weight_transfer", "WeightTransferConfig", "backend")
    dataclass_init("vllm.config.weight_transfer", "WeightTransferConfig").bind(**{"backend": "nccl"})


def test_problems_name_the_settings():
    assert wp.problems("object_store", False, "p", policy(num_gpus=0)) == []
    assert wp.problems("nccl", True, "p", policy()) == []
    assert wp.problems("nccl", True, "p", policy(num_gpus=0, vllm={"tensor_parallel_size": 2})) == []
    cpu = wp.problems("nccl", False, "p", policy(num_gpus=0))
    assert any("ppo.use_gpu: true" in p for p in cpu) and any("models.p.num_gpus is 0" in p for p in cpu)
    replay = wp.problems("nccl", True, "p", ModelConfig(engine="replay", path="a"))
    assert replay == ["ppo.weight_sync 'nccl' needs a vllm engine: models.p.engine is 'replay'"]
    assert wp.problems("ipc", True, "p", policy(num_gpus=0.5)) == []
    ipc = " ".join(wp.problems("ipc", True, "p", policy(replicas=2)))
    assert "models.p.replicas and vllm.tensor_parallel_size must be 1" in ipc and "num_gpus must be below 1" in ipc


def test_learner_gpus_and_colocation():
    assert wp.learner_gpus("nccl", True, policy()) == 1 and wp.learner_gpus("object_store", False, policy()) == 0
    assert wp.learner_gpus("ipc", True, policy(num_gpus=0.3)) == 0.7
    learner = {"node_id": "n1", "gpu_ids": ["0"]}
    assert wp.colocation_problem(learner, {0: {"node_id": "n1", "gpu_ids": ["0"]}}) is None
    assert "replica 0 is on node n1 GPUs ['1']" in wp.colocation_problem(learner, {0: {"node_id": "n1",
                                                                                       "gpu_ids": ["1"]}})
    assert wp.colocation_problem(learner, {0: {"node_id": "n2", "gpu_ids": ["0"]}})


def test_versions_receipts_and_restarts():
    assert wp.version_text(3) == "3" and wp.loaded_version("3") == 3 and wp.loaded_version("default") == 0
    assert wp.receipt("nccl", 3, {0: 3}) == {"transport": "nccl", "version": 3, "loaded": {0: 3}}
    members = {0: {"replica": "a"}, 1: {"replica": "c"}}
    assert wp.restarted({0: "a", 1: "b"}, members) == [1] and wp.restarted({0: "a"}, members) == []
    assert wp.restarted({2: "x"}, members) == [2]


def test_the_plan_is_pure():
    tree = ast.parse(open(wp.__file__, encoding="utf-8").read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"ray", "vllm", "torch"}
