import pytest

from arena_ray.arena.pairing import BattlePlan, assign_instructions, battle_id, model_pairs


def test_battle_id_is_deterministic_and_order_free():
    a = battle_id("q1", "m1", "m2", "judge", "v1")
    assert a == battle_id("q1", "m2", "m1", "judge", "v1")
    assert len({a, battle_id("q2", "m1", "m2", "judge", "v1"), battle_id("q1", "m1", "m3", "judge", "v1"),
                battle_id("q1", "m1", "m2", "judge2", "v1"), battle_id("q1", "m1", "m2", "judge", "v2")}) == 5


def test_battle_id_has_no_separator_collisions():
    assert battle_id("q1", "a b", "c", "j", "v") != battle_id("q1", "a", "b c", "j", "v")


def test_self_battle_refused():
    with pytest.raises(ValueError, match="itself"):
        battle_id("q", "m", "m", "j", "v")


def test_pairings():
    models = ["a", "b", "c", "d"]
    assert len(model_pairs(models, "all_pairs")) == 6
    tva = model_pairs(models, "target_vs_all", "c")
    assert tva == [("a", "c"), ("b", "c"), ("c", "d")]
    with pytest.raises(ValueError):
        model_pairs(models, "target_vs_all", "zz")


def test_plan_is_instruction_major_and_unique():
    plan = list(BattlePlan(("q1", "q2"), tuple(model_pairs(["a", "b", "c"], "all_pairs")), "j", "v"))
    assert [p.instruction_id for p in plan] == ["q1"] * 3 + ["q2"] * 3
    assert len({p.battle_id for p in plan}) == 6
    assert all(p.model_a < p.model_b for p in plan)


def test_a_budget_keeps_the_first_battles_in_plan_order():
    plan = BattlePlan(("q1", "q2", "q3"), tuple(model_pairs(["a", "b", "c"], "all_pairs")), "j", "v")
    capped = plan.capped(4)
    assert [(p.instruction_id, p.model_a, p.model_b) for p in capped] == \
        [(p.instruction_id, p.model_a, p.model_b) for p in list(plan)[:4]]
    assert len(capped) == 4 and plan.capped(100) is plan and plan.capped(None) is plan
    assert {p.battle_id for p in capped} <= {p.battle_id for p in plan}   # the same battles, the same ids


def test_instructions_are_assigned_first_unused_first():
    used: dict = {}
    got = assign_instructions([("b", "a"), ("a", "b"), ("a", "c")], ["q1", "q2"], used)
    assert got == [("q1", "a", "b"), ("q2", "a", "b"), ("q1", "a", "c")]
    assert assign_instructions([("a", "b")], ["q1", "q2"], used) == []   # the pair met on every instruction
