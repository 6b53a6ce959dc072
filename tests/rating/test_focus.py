"""Targeted iterations: the target's win rate per category in the last iteration's battles orders the next
shard weakest category first (real arena-hard prompts; categories derived from their text)."""
from __future__ import annotations

from arena_ray.data.battles import BattleRow
from arena_ray.data.ingest import load_instructions
from arena_ray.rating.focus import category_win_rates, instruction_category, weakest_first
from tests.conftest import SHARED_DATA

COMPETITORS = ("gpt-4-0314",)


def arena_hard(offset: int, limit: int):
    return load_instructions(SHARED_DATA / "instructions" / "arena_hard_v0.1.jsonl", offset=offset, limit=limit)


def test_the_weakest_category_comes_first_and_the_cut_keeps_it():
    before = arena_hard(0, 40)
    coding = {i.instruction_id: instruction_category(i, "coding") for i in before}
    assert set(coding.values()) == {"code", "no code"}
    # The target lost every coding battle and won or tied the rest, on either side of the battle.
    battles = [BattleRow("m@1", "gpt-4-0314", "model_b" if coding[i.instruction_id] == "code" else "tie",
                         i.instruction_id) if k % 2 else
               BattleRow("gpt-4-0314", "m@1", "model_a" if coding[i.instruction_id] == "code" else "model_b",
                         i.instruction_id) for k, i in enumerate(before)]
    battles.append(BattleRow("gpt-4-0314", "gpt-3.5-turbo-0125", "model_a", before[0].instruction_id))  # no target
    rates = category_win_rates(battles, coding, COMPETITORS + ("gpt-3.5-turbo-0125",))
    assert rates["code"]["win_rate"] == 0.0 and 0.5 < rates["no code"]["win_rate"] <= 1.0
    assert rates["code"]["battles"] + rates["no code"]["battles"] == 40
    shard = arena_hard(40, 40)
    chosen = weakest_first(shard, rates, "coding", limit=10)
    n_code = sum(instruction_category(i, "coding") == "code" for i in shard)
    assert 0 < n_code and [instruction_category(i, "coding") for i in chosen] == ["code"] * min(10, n_code) + \
        ["no code"] * (10 - min(10, n_code))
    # Within a category the shard's order is kept; nothing is lost without a limit.
    codes = [i for i in shard if instruction_category(i, "coding") == "code"]
    assert chosen[:len(codes[:10])] == codes[:10]
    assert sorted(i.instruction_id for i in weakest_first(shard, rates, "coding", None)) == \
        sorted(i.instruction_id for i in shard)


def test_categories_never_battled_go_last_and_own_categories_are_used_as_they_are():
    shard = arena_hard(0, 6)  # arena-hard's category is its topic cluster
    clusters = [i.category for i in shard]
    assert all(clusters) and instruction_category(shard[0], "category") == clusters[0]
    rates = {clusters[4]: {"win_rate": 0.1, "battles": 3}, clusters[2]: {"win_rate": 0.6, "battles": 3}}
    order = [i.category for i in weakest_first(shard, rates, "category", None)]
    assert order[0] == clusters[4] and order.index(clusters[2]) < order.index(clusters[0])
    assert category_win_rates([], {}, COMPETITORS) == {}
