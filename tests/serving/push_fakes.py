"""In-process stand-ins for the push's Ray pieces: the WeightStore's class on an event loop of its own, receivers
on fake AsyncLLMs whose calls bind to the installed AsyncLLM's signature (read from vLLM's source)."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from types import SimpleNamespace
from typing import Callable, Optional

from arena_ray.serving.weight_store import Store
from arena_ray.serving.weight_transfer import WeightReceiver
from tests.serving.vllm_source import dataclass_init, method

WT = "vllm.distributed.weight_transfer"


class Remote:
    """`handle.method.remote(...)` of a Ray actor on an in-process object: its coroutines are awaited as the
    receivers await ObjectRefs."""

    def __init__(self, obj):
        self.obj = obj

    def __getattr__(self, name):
        return SimpleNamespace(remote=getattr(self.obj, name))


def vllm_request(name: str):
    """A stand-in for vLLM's request dataclass `name` that binds its arguments to the real one's fields."""
    def make(*args, **kwargs):
        return SimpleNamespace(**dataclass_init(f"{WT}.base", name).bind(*args, **kwargs).arguments)
    return make


REQUESTS = (vllm_request("WeightTransferInitRequest"), vllm_request("WeightTransferUpdateRequest"))


class FakeAsyncLLM:
    """Records each call, bound to the installed AsyncLLM's signature; keeps the committed weight version."""

    def __init__(self, fail: Optional[str] = None, hook: Optional[Callable] = None):
        self.calls, self.version, self.fail, self.hook = [], "default", fail, hook

    def __getattr__(self, name):
        sig = method("vllm.v1.engine.async_llm", "AsyncLLM", name)

        async def call(*args, **kwargs):
            sig.bind(*args, **kwargs)
            self.calls.append((name, args, kwargs))
            if name == self.fail:
                raise RuntimeError(f"{name} broke")
            if self.hook is not None:  # what vLLM's worker side would do with it
                self.hook(name, args, kwargs)
            if name == "finish_weight_update" and kwargs.get("weight_version") is not None:
                self.version = kwargs["weight_version"]
            return self.version if name == "get_weight_version" else None
        return call


class Group:
    """A store and `replicas` receivers on an event loop of their own; `call` is StoreClient's."""

    def __init__(self, loop, replicas: int, tp: int, timeout_s: float, fail: dict, hook, requests):
        self.loop, self.tp, self.timeout_s, self.requests = loop, tp, timeout_s, requests
        self.store = Store()
        self.engines = [FakeAsyncLLM(fail.get(r), hook and (lambda *a, r=r: hook(r, *a))) for r in range(replicas)]
        self.stamps: dict[int, list[int]] = {r: [] for r in range(replicas)}
        self.receivers = [self.receiver(r, f"replica-{r}") for r in range(replicas)]
        self.roster = {r: m["replica"] for r, m in self.run(self.store.roster(replicas, 5)).items()}

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def receiver(self, rank: int, replica: str) -> WeightReceiver:
        async def start():
            receiver = WeightReceiver(self.engines[rank], lambda: Remote(self.store), rank, self.tp,
                                      {"replica": replica}, self.stamps[rank].append, self.requests)
            receiver.start()
            return receiver
        return self.run(start())

    def call(self, method_name: str, payload):
        return self.run(self.store.call(method_name, payload, self.roster, self.timeout_s))


@contextlib.contextmanager
def group(replicas: int = 2, tp: int = 2, timeout_s: float = 5.0, fail: Optional[dict] = None, hook=None,
          requests=REQUESTS):
    """hook(replica, method, args, kwargs): run after each engine call. requests: None for vLLM's own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    g = Group(loop, replicas, tp, timeout_s, fail or {}, hook, requests)
    try:
        yield g
    finally:
        for r in g.receivers:
            loop.call_soon_threadsafe(r.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
