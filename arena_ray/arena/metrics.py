"""Live metrics for the Ray dashboard and Prometheus (ray.util.metrics), exported by the coordinator actor
from the scheduler's counters, and by training workers from transformers' logs.

The mapping from counters to metric updates is pure (`updates`) and unit-tested; `ArenaMetrics` only
pushes those updates into Ray's metric objects. Names are prefixed `arena_` and tagged with the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from arena_ray.records import Progress

COUNTERS = {  # summary key → metric name (monotonic totals, exported as deltas)
    "generations_done": "arena_generations_done",
    "games_done": "arena_judge_games_done",
    "games_failed": "arena_judge_games_failed",
    "parse_failures": "arena_judge_parse_failures",
}


@dataclass(frozen=True)
class Update:
    kind: str     # counter | gauge
    name: str
    value: float
    role: str = ""


def updates(previous: Optional[Progress], current: Progress, queue_depth: int) -> list[Update]:
    """What to export since `previous` (None at the start)."""
    previous = previous or Progress()
    out = []
    for key, name in COUNTERS.items():
        delta = getattr(current, key) - getattr(previous, key)
        if delta > 0:
            out.append(Update("counter", name, delta))
    for role, meter in current.meters.items():
        before = previous.meters.get(role)
        out.append(Update("gauge", "arena_in_flight_requests", meter.in_flight, role))
        out.append(Update("gauge", "arena_tokens_per_s", meter.tokens_per_s, role))
        retries = meter.retries - (before.retries if before else 0)
        if retries > 0:
            out.append(Update("counter", "arena_request_retries", retries, role))
    out.append(Update("gauge", "arena_judge_queue_depth", queue_depth))
    return out


class ArenaMetrics:
    """ray.util.metrics objects for one run (created inside an actor or the driver)."""

    def __init__(self, run: str):
        from ray.util.metrics import Counter, Gauge

        self.tags = {"run": run}
        keys = ("run", "role")
        self.metrics = {name: Counter(name, description=f"{key} (cumulative)", tag_keys=keys)
                        for key, name in COUNTERS.items()}
        self.metrics["arena_request_retries"] = Counter("arena_request_retries", "requests retried", tag_keys=keys)
        for name, text in (("arena_in_flight_requests", "requests in flight per role"),
                           ("arena_tokens_per_s", "completion tokens per second per role"),
                           ("arena_judge_queue_depth", "judge games waiting for a judge slot"),
                           ("arena_position_disagreement_rate", "battles whose two games disagreed"),
                           ("arena_battles", "battles decided in the run"),
                           ("arena_weight_version", "registry version of the latest trained model")):
            self.metrics[name] = Gauge(name, description=text, tag_keys=keys)

    def push(self, batch: list[Update]) -> None:
        for u in batch:
            metric = self.metrics[u.name]
            tags = {**self.tags, "role": u.role}
            if u.kind == "counter":
                metric.inc(u.value, tags=tags)
            else:
                metric.set(u.value, tags=tags)

    def set(self, name: str, value: float, role: str = "") -> None:
        self.push([Update("gauge", name, value, role)])
