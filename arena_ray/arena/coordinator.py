"""The coordinator: a Ray actor that runs the BattleScheduler against the models' Serve handles.

It is pinned to the driver's node so that it writes the ledger where the driver reads it (on a cluster,
put run_dir on shared storage to let it run anywhere).
"""
from __future__ import annotations

import asyncio
from dataclasses import replace

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import PlannedBattle
from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings, RetrySettings
from arena_ray.records import Completion, GenerationRequest, Instruction
from arena_ray.serving.engines import MissingAnswer


class ServeModelClient:
    """A DeploymentHandle as a ModelClient; a cancelled (timed-out) call cancels the Serve request too."""

    def __init__(self, handle, capacity: int):
        self.handle, self.capacity = handle, capacity

    async def generate(self, request: GenerationRequest) -> Completion:
        response = self.handle.generate.remote(request)
        try:
            return await response
        except asyncio.CancelledError:
            response.cancel()
            raise


class Coordinator:
    def __init__(self, run_dir: str, instructions: list[Instruction], plan: list[PlannedBattle],
                 competitors: dict[str, tuple[object, int]], judge: tuple[object, int],
                 judge_settings: JudgeSettings, retry: RetrySettings, flush_every: int, flush_interval_s: float):
        clients = {name: ServeModelClient(h, cap) for name, (h, cap) in competitors.items()}
        self.scheduler = BattleScheduler(instructions, plan, clients, ServeModelClient(*judge), judge_settings,
                                         replace(retry, permanent=retry.permanent + (MissingAnswer,)),
                                         Ledger(run_dir), flush_every, flush_interval_s)

    async def run(self) -> dict:
        return await self.scheduler.run()

    async def progress(self) -> dict:
        return self.scheduler.summary()


def start_coordinator(**kwargs):
    """Create the coordinator actor on this (the driver's) node."""
    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(Coordinator).options(
        name=None, num_cpus=0, max_concurrency=1000,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))
    return actor.remote(**kwargs)
