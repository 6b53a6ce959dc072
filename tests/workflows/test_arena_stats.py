"""The counters of an arena's coordinator passes (active pairing fights round after round) add up exactly."""
from __future__ import annotations

from arena_ray.workflows.arena import combined


def one_pass(requests: int, tokens: int, busy: float) -> dict:
    meter = {"requests": requests, "completion_tokens": tokens, "retries": 1, "failures": 0, "busy_s": busy,
             "tokens_per_s": round(tokens / busy, 2), "capacity": 4, "mean_in_flight": 1.0}
    return {"games_done": 2 * requests, "meters": {"m": meter, "judge": dict(meter)}}


def test_one_pass_is_reported_as_it_is():
    single = one_pass(2, 20, 4.0)
    out = combined([single])
    assert out["meters"] == single["meters"] and out["games_done"] == 4 and out["passes"] == 1


def test_passes_add_up():
    out = combined([one_pass(2, 20, 4.0), one_pass(3, 40, 1.0)])
    assert out["games_done"] == 10 and out["passes"] == 2
    m = out["meters"]["m"]
    assert (m["requests"], m["completion_tokens"], m["retries"], m["busy_s"]) == (5, 60, 2, 5.0)
    assert m["tokens_per_s"] == 12.0
