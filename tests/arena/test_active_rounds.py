"""Active pairing's rounds (pure): every pair once first; then battles where the ranking is still uncertain,
within the budget; nothing more once every pair is settled; rounds recorded for resume."""
from __future__ import annotations

import numpy as np

from arena_ray.arena.active_rounds import next_round, record_round, recorded_plan, rounds_of
from arena_ray.arena.pairing import BattlePlan, model_pairs
from arena_ray.records import Battle
from arena_ray.settings.arena import ActiveConfig

MODELS = ["a", "b", "c", "d"]
QUESTIONS = [f"q{i}" for i in range(200)]


def base() -> BattlePlan:
    return BattlePlan(tuple(QUESTIONS), tuple(model_pairs(MODELS, "all_pairs")), "judge", "v1")


def fought(plan: BattlePlan, truth: dict, seed: int = 0) -> list[Battle]:
    rng = np.random.default_rng(seed)
    out = []
    for pb in plan:
        p = 1 / (1 + 10 ** ((truth[pb.model_b] - truth[pb.model_a]) / 400))
        out.append(Battle(pb.battle_id, pb.instruction_id, pb.model_a, pb.model_b,
                          "model_a" if rng.random() < p else "model_b", 0, 0, True, "judge", "v1"))
    return out


def test_first_round_every_pair_once_then_focus_then_stop(tmp_path):
    cfg = ActiveConfig(resolution=25.0)
    truth = {"a": 1400, "b": 1000, "c": 700, "d": 300}   # far apart: settled quickly
    plan = recorded_plan(tmp_path, base())
    first = next_round(plan, [], MODELS, QUESTIONS, cfg, batch=10, max_battles=None)
    assert sorted((a, b) for _, a, b in first) == model_pairs(MODELS, "all_pairs") and \
        {iid for iid, _, _ in first} == {"q0"}
    record_round(tmp_path, first)
    rounds = 1
    while True:
        plan = recorded_plan(tmp_path, base())
        battles = next_round(plan, fought(plan, truth), MODELS, QUESTIONS, cfg, batch=10, max_battles=None)
        if not battles:
            break
        assert len(battles) == 10 and not {b for b in battles} & {(p.instruction_id, p.model_a, p.model_b)
                                                                  for p in plan}
        record_round(tmp_path, battles)
        rounds += 1
        assert rounds < 60, "never settled"
    assert len(rounds_of(tmp_path)) == rounds and len(plan) == 6 + 10 * (rounds - 1)


def test_the_budget_stops_the_rounds(tmp_path):
    cfg = ActiveConfig()
    truth = {"a": 1010, "b": 1000, "c": 995, "d": 990}   # close: never settled within a small budget
    first = next_round(recorded_plan(tmp_path, base()), [], MODELS, QUESTIONS, cfg, batch=10, max_battles=8)
    record_round(tmp_path, first)
    plan = recorded_plan(tmp_path, base())
    second = next_round(plan, fought(plan, truth), MODELS, QUESTIONS, cfg, batch=10, max_battles=8)
    assert len(first) == 6 and len(second) == 2
    record_round(tmp_path, second)
    plan = recorded_plan(tmp_path, base())
    assert next_round(plan, fought(plan, truth), MODELS, QUESTIONS, cfg, batch=10, max_battles=8) == []


def test_a_torn_last_round_line_is_a_round_never_recorded(tmp_path):
    record_round(tmp_path, [("q0", "a", "b")])
    with (tmp_path / "active_rounds.jsonl").open("a") as fh:
        fh.write('{"round": 1, "battles": [["q1", "a"')
    assert rounds_of(tmp_path) == [[("q0", "a", "b")]]
