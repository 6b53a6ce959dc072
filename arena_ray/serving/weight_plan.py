"""The NCCL / CUDA IPC weight push as plain data: group ranks, what the trainer and each replica pass to vLLM's
weight-transfer API, which parameters go in which order, and which settings a policy needs for it.

Pure (no ray, vllm or torch): the shells (serving/weight_transfer.py, train/weight_push.py) build vLLM's own
request and init-info classes from these values, and the tests hold the values against those classes.
"""
from __future__ import annotations

import base64
import pickle
from dataclasses import dataclass
from typing import Iterable, Literal, Optional, Sequence

from arena_ray.settings.models import ModelConfig
from arena_ray.settings.vllm_args import engine_arg_names

Transport = Literal["object_store", "nccl", "ipc"]
PUSHED = ("nccl", "ipc")  # vLLM weight-transfer backends; object_store is arena_ray's own path (weights.py)
TRAINER_RANK = 0
CALL_TIMEOUT_S = 600.0  # one call on every replica (a whole broadcast of a large model included)
ROSTER_TIMEOUT_S = 300.0  # replicas are running when the learner starts; their receivers join within seconds
INSECURE_SERIALIZATION = "VLLM_ALLOW_INSECURE_SERIALIZATION"


# --- who is which rank ---

def rank_offset(replica: int, tensor_parallel_size: int) -> int:
    """The group rank of a replica's TP rank 0. Every Serve replica is an engine of its own (vLLM sees
    data_parallel_index 0 in each), so vLLM would put every replica's workers at its trainer's single
    rank_offset 1; the replicas are spread here instead, as OpenRLHF spreads its engines."""
    return 1 + replica * tensor_parallel_size


@dataclass(frozen=True)
class Rendezvous:
    """The trainer<->workers NCCL group: the trainer is rank 0, replica r's TP ranks follow at rank_offset."""

    master_address: str
    master_port: int
    replicas: int
    tensor_parallel_size: int

    @property
    def world_size(self) -> int:
        return 1 + self.replicas * self.tensor_parallel_size

    def ranks(self, replica: int) -> tuple[int, ...]:
        if not 0 <= replica < self.replicas:
            raise ValueError(f"replica {replica} is not one of the {self.replicas} replicas")
        first = rank_offset(replica, self.tensor_parallel_size)
        return tuple(range(first, first + self.tensor_parallel_size))


def plan_rendezvous(master_address: str, master_port: int, replicas: int, tensor_parallel_size: int) -> Rendezvous:
    if not 0 < master_port < 65536:
        raise ValueError(f"master_port {master_port} is not a TCP port")
    if replicas < 1 or tensor_parallel_size < 1:
        raise ValueError(f"replicas ({replicas}) and tensor_parallel_size ({tensor_parallel_size}) must be >= 1")
    return Rendezvous(master_address, master_port, replicas, tensor_parallel_size)


def rendezvous_address(trainer_ip: str, member_ips: Iterable[str]) -> str:
    """Loopback when every replica runs on the trainer's node (the rendezvous store then listens on no
    outside address, as this project's endpoints do by default), else the trainer node's address."""
    return "127.0.0.1" if all(ip == trainer_ip for ip in member_ips) else trainer_ip


# --- what each side passes to vLLM ---

def trainer_init_info(transport: str, rendezvous: Optional[Rendezvous] = None) -> dict:
    """Keyword arguments of vLLM's NCCLTrainerInitInfo (nccl) or IPCTrainerInitInfo (ipc). NCCL is packed:
    a few large broadcasts through vLLM's double buffer instead of one per tensor. IPC is not: each handle
    points at the learner's own tensor, which the replica copies from (nothing is staged)."""
    if transport == "nccl":
        if rendezvous is None:
            raise ValueError("nccl needs a rendezvous")
        return {"rank": TRAINER_RANK, "master_address": rendezvous.master_address,
                "master_port": rendezvous.master_port, "world_size": rendezvous.world_size, "packed": True}
    if transport == "ipc":
        return {"rank": TRAINER_RANK, "packed": False}
    raise ValueError(f"'{transport}' is not a weight-transfer backend ({', '.join(PUSHED)})")


def worker_init_info(init_info: dict, replica: int, tensor_parallel_size: int) -> dict:
    """The init info one replica passes to vLLM's init_weight_transfer_engine: the one the trainer sent
    (vLLM's trainer engine fills it in), with this replica's rank offset. IPC's has no group: unchanged."""
    if "world_size" not in init_info:
        return dict(init_info)
    offset = rank_offset(replica, tensor_parallel_size)
    if offset + tensor_parallel_size > init_info["world_size"]:
        raise ValueError(f"replica {replica} (TP {tensor_parallel_size}) needs ranks up to "
                         f"{offset + tensor_parallel_size - 1}, but the group has {init_info['world_size']}")
    return {**init_info, "rank_offset": offset}


@dataclass(frozen=True)
class EngineCall:
    """One call on a replica's vLLM AsyncLLM: `method`, given `request` (vLLM's WeightTransferInitRequest
    field `init_info`, or WeightTransferUpdateRequest field `update_info`) wrapping `body`, and `kwargs`."""

    method: str
    request: Optional[Literal["init", "update"]] = None
    body: object = None
    kwargs: tuple[tuple[str, object], ...] = ()


# The trainer engine's client calls (vLLM's VLLMWeightSyncClient protocol), as the replicas run them.
CLIENT_METHODS = ("init_weight_transfer_engine", "start_weight_update", "update_weights", "finish_weight_update",
                  "shutdown_weight_transfer_engine")


def engine_call(method: str, payload, replica: int, tensor_parallel_size: int) -> EngineCall:
    if method == "init_weight_transfer_engine":
        return EngineCall(method, "init", worker_init_info(payload, replica, tensor_parallel_size))
    if method == "update_weights":
        return EngineCall(method, "update", payload)
    if method == "finish_weight_update":
        # The version reaches vLLM (its engine's committed weight version), which the replica reads back.
        return EngineCall(method, kwargs=(("weight_version", payload["weight_version"]),))
    if method in ("start_weight_update", "shutdown_weight_transfer_engine"):
        return EngineCall(method)
    raise ValueError(f"'{method}' is not a weight-sync call ({', '.join(CLIENT_METHODS)})")


def wire_update_info(update_info):
    """CUDA IPC handles hold torch types that the messages between vLLM's front end and its engine core
    (msgpack) do not carry: they travel pickled, as vLLM's own `ipc_handles_pickled`, which its worker loads
    with VLLM_ALLOW_INSECURE_SERIALIZATION=1 (set on the policy's replicas: the pickle comes from this job's
    learner, never from a client). NCCL's update info is names, dtypes and shapes: unchanged."""
    if isinstance(update_info, list):
        return [wire_update_info(u) for u in update_info]
    if update_info.get("ipc_handles") is None:
        return update_info
    out = {k: v for k, v in update_info.items() if k != "ipc_handles"}
    out["ipc_handles_pickled"] = base64.b64encode(pickle.dumps(update_info["ipc_handles"])).decode("ascii")
    return out


def version_text(version: int) -> str:
    return str(version)  # vLLM keeps weight versions as strings


def loaded_version(text: str) -> int:
    """vLLM's committed weight version as ours: 0 before any push (vLLM says 'default')."""
    return int(text) if text and text.isdigit() else 0


def receipt(transport: str, version: int, loaded: dict[int, int]) -> dict:
    """What the WeightStore publishes for a push (the bytes never pass through it): a replica that is asked
    for this version waits for its receiver instead of fetching weights."""
    return {"transport": transport, "version": version, "loaded": dict(loaded)}


# --- which parameters, in which order ---

@dataclass(frozen=True)
class Param:
    name: str
    dtype: str  # torch dtype name without "torch." (vLLM's dtype_names)
    shape: tuple[int, ...]
    nbytes: int


def param_plan(entries: Iterable[tuple[str, str, Sequence[int], int]]) -> list[Param]:
    """Every state-dict entry (name, dtype, shape, bytes), in state-dict order, tied aliases included: vLLM's
    layerwise reload (what its NCCL and IPC receivers load through) puts back the old weights of a layer that
    receives none, so a tied lm_head left out would restore itself and the embeddings it shares."""
    params, seen = [], set()
    for name, dtype, shape, nbytes in entries:
        if name in seen:
            raise ValueError(f"parameter '{name}' twice")
        seen.add(name)
        params.append(Param(name, dtype.removeprefix("torch."), tuple(int(d) for d in shape), int(nbytes)))
    if not params:
        raise ValueError("no parameters to send")
    return params


def update_info(params: Sequence[Param]) -> dict:
    """vLLM's NCCLWeightTransferUpdateInfo fields (what vLLM's trainer engine also sends, from the source's
    metadata): the receivers size their buffers from it."""
    return {"names": [p.name for p in params], "dtype_names": [p.dtype for p in params],
            "shapes": [list(p.shape) for p in params]}


def packed_chunks(params: Sequence[Param], buffer_size_bytes: int) -> list[list[str]]:
    """The names of each packed broadcast, cut as vLLM's pack_tensors cuts them (a chunk closes after the
    parameter that takes it past the buffer size). Both sides cut from the same metadata; this tells how many
    broadcasts a push takes and how large its buffers grow."""
    chunks, current, size = [], [], 0
    for p in params:
        current.append(p.name)
        size += p.nbytes
        if size > buffer_size_bytes:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


# --- what a policy needs for it ---

def serving_config(cfg: ModelConfig, transport: str) -> ModelConfig:
    """The policy's model settings with vLLM's weight-transfer backend switched on (engine argument
    `weight_transfer_config`) and, for IPC, the handles' unpickling allowed (see wire_update_info)."""
    if transport not in PUSHED:
        return cfg
    extra = {**cfg.vllm.extra, "weight_transfer_config": {"backend": transport}}
    env = {**cfg.env, INSECURE_SERIALIZATION: "1"} if transport == "ipc" else cfg.env
    return cfg.model_copy(update={"vllm": cfg.vllm.model_copy(update={"extra": extra}), "env": env})


def gpu_engine(cfg: ModelConfig) -> bool:
    # Tensor-parallel replicas take their GPUs as placement-group bundles (deployments.deployment_options).
    return cfg.engine == "vllm" and (cfg.num_gpus > 0 or cfg.vllm.tensor_parallel_size > 1)


def problems(transport: str, use_gpu: bool, name: str, cfg: ModelConfig) -> list[str]:
    """Why this policy cannot take weights over `transport`, one line per reason, naming the settings."""
    if transport not in PUSHED:
        return []
    out, why = [], f"ppo.weight_sync '{transport}'"
    names = engine_arg_names()  # None: no vLLM here to read (the replicas' image decides)
    if names is not None and "weight_transfer_config" not in names:
        out.append(f"{why} needs vLLM's weight-transfer API (engine argument weight_transfer_config), which the "
                   "installed vLLM lacks (written against vLLM 0.32)")
    if not use_gpu:
        out.append(f"{why} needs ppo.use_gpu: true (the learner sends from GPU memory)")
    if cfg.engine != "vllm":
        out.append(f"{why} needs a vllm engine: models.{name}.engine is '{cfg.engine}'")
    elif not gpu_engine(cfg):
        out.append(f"{why} needs the policy's vLLM on GPUs: models.{name}.num_gpus is 0 (vLLM's CPU backend "
                   "has no weight-transfer receiver)")
    if transport == "ipc":
        if cfg.replicas != 1 or cfg.vllm.tensor_parallel_size != 1:
            out.append(f"{why} reaches only the learner's own GPU: models.{name}.replicas and "
                       f"vllm.tensor_parallel_size must be 1 (are {cfg.replicas} and "
                       f"{cfg.vllm.tensor_parallel_size}); use 'nccl'")
        if cfg.num_gpus >= 1:
            out.append(f"{why} shares one GPU between the learner and the policy: models.{name}.num_gpus must be "
                       f"below 1 (is {cfg.num_gpus}; the learner takes the rest)")
    return out


def learner_gpus(transport: str, use_gpu: bool, cfg: ModelConfig) -> float:
    """GPUs the learner reserves: the rest of the policy's GPU with IPC (Ray places a fractional request on
    the GPU it fits best, the policy's partly taken one; the learner checks it did), else a whole one
    (NCCL cannot join two ranks on one GPU)."""
    if not use_gpu:
        return 0
    return round(1 - cfg.num_gpus, 4) if transport == "ipc" else 1


def colocation_problem(learner: dict, members: dict[int, dict]) -> Optional[str]:
    """IPC handles open only on the GPU they came from: every replica must share the learner's node and GPU
    (each side's `node_id` and Ray `gpu_ids`)."""
    for rank, m in sorted(members.items()):
        if m.get("node_id") != learner.get("node_id") or not set(m.get("gpu_ids") or ()) & \
                set(learner.get("gpu_ids") or ()):
            return (f"ppo.weight_sync 'ipc': replica {rank} is on node {m.get('node_id')} GPUs {m.get('gpu_ids')}, "
                    f"the learner on node {learner.get('node_id')} GPUs {learner.get('gpu_ids')}; CUDA IPC needs "
                    "them on one GPU (use 'nccl' across GPUs)")
    return None


def restarted(roster: dict[int, str], members: dict[int, dict]) -> list[int]:
    """Replica ranks whose replica is no longer the one that joined the group (Serve restarted it, or it is
    gone): an NCCL group cannot take a new member, so the push stops rather than hang in a broadcast."""
    return sorted(r for r, replica in roster.items() if members.get(r, {}).get("replica") != replica)
