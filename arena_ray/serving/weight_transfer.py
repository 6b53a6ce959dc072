"""The NCCL / CUDA IPC weight push between a trainer and the serving replicas, through vLLM's weight-transfer API:
the trainer's client and each replica's receiver, meeting in the WeightStore mailbox (weight_store.py).

vLLM's trainer engine (train/weight_push.py) drives a push through a `VLLMWeightSyncClient`: four calls that
each must reach every inference engine, NCCL's update_weights while the trainer broadcasts. `StoreClient` is
that client; `WeightReceiver` runs the calls on its replica's AsyncLLM. What each side passes is planned in
weight_plan.py.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional

from arena_ray.serving.weight_plan import (
    CALL_TIMEOUT_S,
    engine_call,
    loaded_version,
    version_text,
    wire_update_info,
)

log = logging.getLogger(__name__)


class StoreClient:
    """vLLM's VLLMWeightSyncClient protocol (structural: these methods) over the WeightStore: `call(method,
    payload)` runs one call on every replica of the group and returns their answers by replica rank."""

    def __init__(self, call: Callable[[str, object], dict]):
        self.call = call
        self.version: Optional[int] = None  # the version being pushed (vLLM's trainer engines finish without one)
        self.loaded: dict[int, int] = {}  # replica rank → the version it reports after the last finish

    def init_weight_transfer_engine(self, init_info: dict) -> None:
        self.call("init_weight_transfer_engine", init_info)

    def start_weight_update(self) -> None:
        self.call("start_weight_update", None)

    def update_weights(self, update_info) -> None:
        self.call("update_weights", wire_update_info(update_info))

    def finish_weight_update(self, weight_version: Optional[str] = None) -> None:
        text = weight_version if weight_version is not None else version_text(self.version)
        self.loaded = self.call("finish_weight_update", {"weight_version": text})

    def shutdown_weight_transfer_engine(self) -> None:
        self.call("shutdown_weight_transfer_engine", None)


def store_call(store, roster: dict[int, str], timeout_s: float = CALL_TIMEOUT_S) -> Callable[[str, object], dict]:
    """`StoreClient.call` on a WeightStore actor, for the replicas that formed the group."""
    import ray

    return lambda method, payload: ray.get(store.call.remote(method, payload, roster, timeout_s))


def vllm_requests() -> tuple[type, type]:
    from vllm.distributed.weight_transfer.base import WeightTransferInitRequest, WeightTransferUpdateRequest

    return WeightTransferInitRequest, WeightTransferUpdateRequest


class WeightReceiver:
    """Beside one replica's vLLM AsyncLLM (an engine configured with `weight_transfer_config`): joins the
    WeightStore under the replica's Serve rank, runs each call of the trainer on the engine and answers it;
    after a finish, with the weight version vLLM committed (which the replica then stamps on its answers)."""

    def __init__(self, engine, find_store: Callable[[], object], replica: int, tensor_parallel_size: int,
                 member: dict, on_loaded: Callable[[int], None], requests: Optional[tuple[type, type]] = None,
                 retry_s: float = 1.0):
        self.engine, self.find_store = engine, find_store
        self.replica, self.tp, self.member = replica, tensor_parallel_size, member
        self.on_loaded = on_loaded
        self.requests = requests  # vLLM's (WeightTransferInitRequest, WeightTransferUpdateRequest) when None
        self.retry_s = retry_s
        self.loaded = 0
        self.task: Optional[asyncio.Task] = None
        self._loaded_changed: Optional[asyncio.Condition] = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        """Serve the store's calls; when the store is gone (its job ended), wait for the next one's."""
        while True:
            store = self.find_store()
            if store is None:  # the learner's job opens it after the replicas are up
                await asyncio.sleep(self.retry_s)
                continue
            try:
                after = await store.join.remote(self.replica, self.member)
                while True:
                    seq, method, payload = await store.next_command.remote(after)
                    after = seq
                    ok, value = await self.answer(method, payload)
                    await store.ack.remote(seq, self.replica, ok, value)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the store's actor died: a later job makes a new one
                log.info("weight store unreachable (%s); waiting for the next one", err)
                await asyncio.sleep(self.retry_s)

    async def answer(self, method: str, payload) -> tuple[bool, object]:
        try:
            call = engine_call(method, payload, self.replica, self.tp)
            init_request, update_request = self.requests or vllm_requests()
            args = () if call.request is None else \
                (init_request(init_info=call.body),) if call.request == "init" else (update_request(update_info=call.body),)
            await getattr(self.engine, call.method)(*args, **dict(call.kwargs))
            if method != "finish_weight_update":
                return True, None
            await self.engine.reset_prefix_cache()  # cached prefixes were computed by the old weights
            await self._set_loaded(loaded_version(await self.engine.get_weight_version()))
            return True, self.loaded
        except Exception as err:  # answered, so that the trainer fails by name instead of waiting
            log.warning("replica %d: %s failed: %s", self.replica, method, err)
            return False, f"{type(err).__name__}: {err}"

    @property
    def loaded_changed(self) -> asyncio.Condition:
        if self._loaded_changed is None:
            self._loaded_changed = asyncio.Condition()
        return self._loaded_changed

    async def _set_loaded(self, version: int) -> None:
        self.loaded = version
        self.on_loaded(version)
        async with self.loaded_changed:
            self.loaded_changed.notify_all()

    async def wait_loaded(self, version: int, timeout_s: float = CALL_TIMEOUT_S) -> None:
        """Until this replica holds `version` (the trainer's push of it is under way or done)."""
        try:
            async with self.loaded_changed:
                await asyncio.wait_for(self.loaded_changed.wait_for(lambda: self.loaded >= version), timeout_s)
        except asyncio.TimeoutError:
            raise RuntimeError(f"weight version {version} was not pushed to replica {self.replica} (it holds "
                               f"{self.loaded}): a replica that Serve restarted after the weight-transfer group "
                               "formed cannot join it") from None


def start_receiver(engine, tensor_parallel_size: int, on_loaded: Callable[[int], None]) -> Optional[WeightReceiver]:
    """A receiver for this Serve replica's engine, on the replica's event loop; None outside a replica."""
    import ray
    from ray import serve
    from ray.serve.exceptions import RayServeException

    from arena_ray.serving.weight_store import find_store

    try:
        ctx = serve.get_replica_context()
        asyncio.get_running_loop()
    except (RayServeException, RuntimeError):
        log.warning("a vLLM engine with weight_transfer_config outside a Serve replica's event loop: it receives "
                    "no pushed weights")
        return None
    rank = ctx.rank.rank if ctx.rank is not None else 0 if ctx.world_size == 1 else None
    if rank is None:  # the replica's place in the group comes from Serve's replica rank
        raise RuntimeError(f"{ctx.app_name}: Serve gave this replica no rank; the weight push needs one")
    member = {"replica": ctx.replica_id.unique_id, "node_id": ray.get_runtime_context().get_node_id(),
              "node_ip": ray.util.get_node_ip_address(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}

    def find():
        try:
            return find_store(ctx.app_name)
        except ValueError:  # not created yet
            return None

    receiver = WeightReceiver(engine, find, rank, tensor_parallel_size, member, on_loaded)
    receiver.start()
    return receiver
