"""Which metric updates the coordinator exports from two scheduler summaries (pure)."""
from __future__ import annotations

from dataclasses import replace

from arena_ray.arena.metrics import Update, updates
from arena_ray.arena.scheduler import Meter
from arena_ray.records import Progress


def summary(games_done=0, failed=0, parse=0, gens=0, retries=0, in_flight=0, tps=0.0):
    meter = Meter(capacity=4, retries=retries, in_flight=in_flight).summary()  # the scheduler's real record
    return Progress(generations_done=gens, games_done=games_done, games_failed=failed, parse_failures=parse,
                    meters={"judge": replace(meter, tokens_per_s=tps)})


def test_counters_are_exported_as_deltas_and_gauges_as_values():
    first = updates(None, summary(games_done=3, gens=4, in_flight=2, tps=10.5), queue_depth=7)
    assert Update("counter", "arena_judge_games_done", 3) in first
    assert Update("counter", "arena_generations_done", 4) in first
    assert Update("gauge", "arena_in_flight_requests", 2, "judge") in first
    assert Update("gauge", "arena_tokens_per_s", 10.5, "judge") in first
    assert Update("gauge", "arena_judge_queue_depth", 7) in first
    second = updates(summary(games_done=3, gens=4), summary(games_done=5, gens=4, failed=1, parse=2, retries=1), 0)
    counters = {(u.name, u.role): u.value for u in second if u.kind == "counter"}
    assert counters == {("arena_judge_games_done", ""): 2, ("arena_judge_games_failed", ""): 1,
                        ("arena_judge_parse_failures", ""): 2, ("arena_request_retries", "judge"): 1}
