"""The learner's side of the NCCL / CUDA IPC weight push: vLLM's trainer weight-transfer engine (made by its
WeightTransferTrainerFactory) sending the policy's state dict to every serving replica of the policy.

Runs in the learner's process, on its GPU. The group and every argument come from serving/weight_plan.py; the
calls reach the replicas through serving/weight_transfer.py's StoreClient.
"""
from __future__ import annotations

import socket
from typing import Iterator, Optional

import torch
from vllm.distributed.weight_transfer import WeightTransferTrainerFactory
from vllm.distributed.weight_transfer.base import ParamMeta, WeightSource
from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo
from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

from arena_ray.errors import TrainingError
from arena_ray.serving.weight_plan import (
    CALL_TIMEOUT_S,
    ROSTER_TIMEOUT_S,
    Param,
    colocation_problem,
    param_plan,
    plan_rendezvous,
    rendezvous_address,
    trainer_init_info,
)
from arena_ray.serving.weight_transfer import StoreClient, store_call

INIT_INFO = {"nccl": NCCLTrainerInitInfo, "ipc": IPCTrainerInitInfo}


def plan_of(state: dict[str, torch.Tensor]) -> list[Param]:
    return param_plan((n, str(t.dtype), tuple(t.shape), t.numel() * t.element_size()) for n, t in state.items())


class StateDictSource(WeightSource):
    """The policy's state dict as vLLM's WeightSource: every name, tied aliases too, in state-dict order (see
    weight_plan.param_plan); tensors are the live ones, not copies (the learner does not step during a push)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(p.name, getattr(torch, p.dtype), p.shape) for p in plan_of(self.model.state_dict())]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from self.model.state_dict().items()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def whereabouts() -> dict:
    """This process's node and GPUs, as a replica's receiver reports its own (weight_transfer.start_receiver)."""
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


class WeightPusher:
    """vLLM's trainer engine for `transport`, rendezvoused with the replicas `members` (replica rank → where it
    runs, as the receivers joined) through `call` (StoreClient's); then pushes on request."""

    def __init__(self, transport: str, policy: torch.nn.Module, members: dict[int, dict], call, here: dict,
                 tensor_parallel_size: int, port: Optional[int] = None):
        rendezvous = None
        if transport == "ipc":
            problem = colocation_problem(here, members)
            if problem:
                raise TrainingError(problem)
        else:
            rendezvous = plan_rendezvous(rendezvous_address(here["node_ip"], [m["node_ip"] for m in members.values()]),
                                         port or free_port(), len(members), tensor_parallel_size)
        self.client = StoreClient(call)
        self.engine = WeightTransferTrainerFactory.trainer_init(
            INIT_INFO[transport](**trainer_init_info(transport, rendezvous)), client=self.client,
            source=StateDictSource(policy))

    def push(self, version: int) -> dict[int, int]:
        """Send the current weights as `version`; the version each replica then reports, by replica rank."""
        self.client.version = version
        self.engine.send_weights()
        wrong = {r: v for r, v in self.client.loaded.items() if v != version}
        if wrong:
            raise TrainingError(f"weight version {version} pushed, but replicas report {wrong}")
        return dict(self.client.loaded)

    def close(self) -> None:
        self.engine.shutdown()


def connect(transport: str, policy: torch.nn.Module, model: str, replicas: int,
            tensor_parallel_size: int) -> WeightPusher:
    """A pusher to every replica of the served policy `model` (its WeightStore's roster)."""
    import ray

    from arena_ray.serving.weight_store import find_store

    store = find_store(model)
    members = ray.get(store.roster.remote(replicas, ROSTER_TIMEOUT_S))
    call = store_call(store, {r: m["replica"] for r, m in members.items()}, CALL_TIMEOUT_S)
    return WeightPusher(transport, policy, members, call, whereabouts(), tensor_parallel_size)
