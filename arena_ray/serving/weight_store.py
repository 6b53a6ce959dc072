"""The named actor of one served model's policy weights (see weights.py): the latest published version, and for
the NCCL / CUDA IPC push the mailbox through which the trainer reaches every replica.

A Serve handle routes a call to one replica, and Serve offers no public call to all of them; so each replica's
receiver joins here under its Serve replica rank and long-polls for the trainer's next call, and the trainer
posts a call and waits until every replica of its group has answered (serving/weight_transfer.py).
"""
from __future__ import annotations

import asyncio
from typing import Optional

import ray

from arena_ray.serving.weight_plan import restarted
from arena_ray.serving.weights import STORE_NAMESPACE, store_name


class Store:
    def __init__(self):
        self.version, self.blob = 0, None
        self.members: dict[int, dict] = {}  # Serve replica rank → {"replica": id, "node_id", "node_ip", "gpu_ids"}
        self.command: Optional[tuple] = None  # (seq, method, payload): the one call in flight
        self.acks: dict[int, tuple[bool, object]] = {}
        self._changed: Optional[asyncio.Condition] = None
        self._one_call: Optional[asyncio.Lock] = None

    def publish(self, version: int, blob_ref: list) -> None:
        """blob_ref: [ObjectRef] (in a list, so Ray passes the reference and not the bytes)."""
        if version <= self.version:
            raise ValueError(f"weight version {version} is not newer than the published {self.version}")
        self.version, self.blob = version, blob_ref[0]

    def latest(self) -> tuple[int, list]:
        return self.version, [self.blob] if self.blob is not None else []

    def reset(self) -> None:
        """A new run starts at version 0. Its replicas' receivers stay joined (a kept-alive policy's), and the
        call numbers go on, so that no receiver takes a new call for one it has already run."""
        self.version, self.blob = 0, None

    # --- the push mailbox ---

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:  # made on the actor's event loop, not in __init__
            self._changed = asyncio.Condition()
        return self._changed

    async def _wait(self, ready, timeout_s: Optional[float]) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(ready), timeout_s)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def join(self, rank: int, member: dict) -> int:
        """A replica's receiver joins (again, after a restart): the sequence number it starts after, so that it
        never runs a call made before it joined."""
        self.members[rank] = member
        await self._notify()
        return self.command[0] if self.command else 0

    async def roster(self, count: int, timeout_s: float) -> dict[int, dict]:
        """The members of replica ranks 0..count-1, once all have joined."""
        try:
            await self._wait(lambda: all(r in self.members for r in range(count)), timeout_s)
        except asyncio.TimeoutError:
            missing = [r for r in range(count) if r not in self.members]
            raise TimeoutError(f"replicas {missing} of {count} did not join the weight push within {timeout_s:.0f}s "
                               "(is the policy served with vLLM's weight_transfer_config?)") from None
        return {r: self.members[r] for r in range(count)}

    async def next_command(self, after: int) -> tuple:
        await self._wait(lambda: self.command is not None and self.command[0] > after, None)
        return self.command

    async def ack(self, seq: int, rank: int, ok: bool, value) -> None:
        if self.command is not None and seq == self.command[0]:
            self.acks[rank] = (ok, value)
            await self._notify()

    async def call(self, method: str, payload, roster: dict[int, str], timeout_s: float) -> dict[int, object]:
        """Run `method` on every replica of `roster` (rank → the replica that joined the group); their answers
        by rank. A replica that failed, restarted or did not answer in time fails the call, by name."""
        if self._one_call is None:
            self._one_call = asyncio.Lock()
        async with self._one_call:  # a second call would reset the first one's answers
            return await self._call(method, payload, roster, timeout_s)

    async def _call(self, method: str, payload, roster: dict[int, str], timeout_s: float) -> dict[int, object]:
        gone = restarted(roster, self.members)
        if gone:
            raise RuntimeError(f"{method}: replicas {gone} restarted since the weight-transfer group formed; it "
                               "cannot take new members (re-run: it resumes from the checkpoint)")
        seq = (self.command[0] if self.command else 0) + 1
        self.command, self.acks = (seq, method, payload), {}
        await self._notify()
        try:
            await self._wait(lambda: all(r in self.acks for r in roster), timeout_s)
        except asyncio.TimeoutError:
            missing = sorted(r for r in roster if r not in self.acks)
            raise TimeoutError(f"{method}: replicas {missing} did not answer within {timeout_s:.0f}s") from None
        failed = {r: v for r, (ok, v) in sorted(self.acks.items()) if not ok}
        if failed:
            raise RuntimeError(f"{method} failed on " + "; ".join(f"replica {r}: {v}" for r, v in failed.items()))
        return {r: v for r, (_, v) in sorted(self.acks.items())}


WeightStore = ray.remote(num_cpus=0)(Store)


def open_store(model: str):
    """Get or create the store for `model` (the driver's process keeps it alive), reset for a new run: one
    left by an earlier run of this process is still alive while receivers hold handles to it."""
    store = WeightStore.options(name=store_name(model), namespace=STORE_NAMESPACE, get_if_exists=True).remote()
    ray.get(store.reset.remote())
    return store


def find_store(model: str):
    return ray.get_actor(store_name(model), namespace=STORE_NAMESPACE)
