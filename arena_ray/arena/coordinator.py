"""The coordinator: a Ray actor that runs the BattleScheduler against the models' Serve handles.

It is pinned to the driver's node so that it writes the ledger where the driver reads it (on a cluster,
put run_dir on shared storage to let it run anywhere). If it dies, Ray restarts it and retries `run()`: the new
instance rebuilds its work list from the ledger, so nothing recorded is asked again. Each start is logged
in run_dir/events.jsonl (the run's stats count the restarts).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from arena_ray.arena.ledger import Ledger
from arena_ray.arena.metrics import ArenaMetrics, updates
from arena_ray.arena.pairing import BattlePlan
from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings
from arena_ray.records import Instruction, Progress
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.engines import MissingAnswer
from arena_ray.serving.retry import RetryPolicy


class Coordinator:
    def __init__(self, run_dir: str, instructions: list[Instruction], plan: BattlePlan,
                 competitors: dict[str, tuple[object, int]], judges: dict[str, tuple[object, int]],
                 judge_settings: JudgeSettings, retry: RetryPolicy, flush_every: int, flush_interval_s: float):
        log_event(run_dir, "coordinator_start", pid=os.getpid())
        self.metrics = ArenaMetrics(Path(run_dir).name)
        clients = {name: ServeModelClient(h, cap) for name, (h, cap) in competitors.items()}
        judge_clients = {name: ServeModelClient(h, cap) for name, (h, cap) in judges.items()}
        self.scheduler = BattleScheduler(instructions, plan, clients, judge_clients, judge_settings,
                                         replace(retry, permanent=retry.permanent + (MissingAnswer,)),
                                         Ledger(run_dir), flush_every, flush_interval_s)
        self._exported: Optional[Progress] = None

    async def run(self) -> Progress:
        exporter = asyncio.create_task(self._export_metrics())
        try:
            summary = await self.scheduler.run()
        finally:
            exporter.cancel()
        self._export_once()
        return summary

    def _export_once(self) -> None:
        current = self.scheduler.summary()
        self.metrics.push(updates(self._exported, current, self.scheduler.judge_backlog))
        self._exported = current

    async def _export_metrics(self, every_s: float = 1.0) -> None:
        """Push counter deltas and gauges to Ray's metrics agent (dashboard, Prometheus) while running."""
        while True:
            self._export_once()
            await asyncio.sleep(every_s)

    async def progress(self) -> Progress:
        return self.scheduler.summary()


def log_event(run_dir: str, event: str, **fields) -> None:
    with open(Path(run_dir) / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")


def count_events(run_dir: str | Path, event: str) -> int:
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip() and json.loads(line)["event"] == event)


def start_coordinator(*, name: str, max_restarts: int, **kwargs):
    """Create the coordinator actor on this (the driver's) node, named so operators (and fault tests) can
    find it; Ray restarts it up to max_restarts times and retries its calls."""
    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(Coordinator).options(
        name=name, num_cpus=0, max_concurrency=1000, max_restarts=max_restarts, max_task_retries=max_restarts,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))
    return actor.remote(**kwargs)
