"""Targeted flywheel iterations, pure: Arena Learning's later iterations battle on the instructions of the
categories where the target lost most. Here: the target's win rate per category in the previous iteration's
battles, then the next shard's instructions ordered weakest category first (unseen categories last, shard
order kept within a category), cut to the iteration's budget.

A category is the instruction's own (`category`: an arena-hard topic cluster, an MT-bench category) or one
derived from its text (`coding`, `prompt_length`, `language`; data/categories.py), so a battle and the
instruction it was fought on always fall in the same one.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Optional, Sequence

from arena_ray.data.battles import BattleRow
from arena_ray.data.categories import DERIVED, category_of
from arena_ray.rating.bradley_terry import OUTCOME
from arena_ray.records import Instruction


def instruction_category(inst: Instruction, field: str) -> str:
    """`field` of an instruction: its own category, or one derived from its text; '' when unknown."""
    if field == "category":
        return inst.category
    if field not in DERIVED:
        return ""
    return category_of(BattleRow("", "", "tie", inst.instruction_id, prompt=inst.text), field) or ""


def category_win_rates(battles: Sequence[BattleRow], categories: Mapping[str, str],
                       competitors: Sequence[str]) -> dict[str, dict]:
    """Per category, the non-competitor side's win rate (ties count half) and its battle count. `categories`
    maps each question id to its category; battles on other questions or between two competitors are skipped."""
    scores: dict[str, list[float]] = defaultdict(list)
    rivals = set(competitors)
    for b in battles:
        cat = categories.get(b.question_id)
        if cat is None or b.winner not in OUTCOME or (b.model_a in rivals) == (b.model_b in rivals):
            continue
        y = OUTCOME[b.winner]
        scores[cat].append(y if b.model_b in rivals else 1.0 - y)
    return {c: {"win_rate": round(sum(v) / len(v), 4), "battles": len(v)} for c, v in sorted(scores.items())}


def weakest_first(instructions: Sequence[Instruction], rates: Mapping[str, Mapping], field: str,
                  limit: Optional[int]) -> list[Instruction]:
    """The shard's instructions, the weakest category's first (lowest win rate; categories the target has not
    battled in go last, in shard order), cut to `limit`."""
    def rank(item: tuple[int, Instruction]) -> tuple:
        k, inst = item
        rate = rates.get(instruction_category(inst, field))
        return (rate is None, rate["win_rate"] if rate else 0.0, k)
    ordered = [inst for _, inst in sorted(enumerate(instructions), key=rank)]
    return ordered if limit is None else ordered[:limit]
