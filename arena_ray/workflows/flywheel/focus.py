"""Targeted flywheel iterations (flywheel.focus: weakest): a stage's battles take its shard's instructions of
the categories the target did worst in during the previous iteration first (rating/focus.py), and the summary
shows each chosen category's win rate before and after."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from arena_ray.arena.ledger import load_instructions_of
from arena_ray.data.battles import read_battles
from arena_ray.data.ingest import load_instructions
from arena_ray.rating.focus import category_win_rates, instruction_category, weakest_first
from arena_ray.records import Instruction, to_table
from arena_ray.records.tables import write_atomic
from arena_ray.settings import Config
from arena_ray.workflows.flywheel.plan import Stage
from arena_ray.workflows.kit import once


def instructions(config: Config, out: Path, shard: Path, previous: list[Path]) -> Path:
    """The shard's instructions, weakest categories of the previous iteration first (rating/focus.py), written
    once to out/instructions.parquet; out/done.json keeps the win rates that ordered them."""
    fw = config.flywheel
    path = out / "instructions.parquet"

    def work() -> dict:
        rates = category_win_rates(*_battles(previous, fw.focus_by), fw.competitors)
        pool = load_instructions(shard)
        chosen = weakest_first(pool, rates, fw.focus_by, fw.instructions_per_shard or max(1, len(pool) // 2))
        write_atomic(to_table(chosen, Instruction), path)
        return {"by": fw.focus_by, "before": rates, "chosen": len(chosen), "shard": str(shard),
                "categories": sorted({instruction_category(i, fw.focus_by) for i in chosen})}
    once(out, work)
    return path


def report(config: Config, root: Path, stages: list[Stage]) -> Optional[dict]:
    """For an iteration's focused battles: per category chosen, the target's win rate in the previous
    iteration (that ordered the shard) and in this one's battles on the focused instructions."""
    fw = config.flywheel
    runs = [root / "battles" / key for key in dict.fromkeys(s.battle_key for s in stages)]
    marks = [run.with_name(f"{run.name}-focus") / "done.json" for run in runs]
    if fw.focus != "weakest" or not all(m.exists() for m in marks):
        return None
    before = json.loads(marks[0].read_text())["before"]
    after = category_win_rates(*_battles(runs, fw.focus_by), fw.competitors)
    return {"by": fw.focus_by, "categories": {c: {"before": before.get(c), "after": a} for c, a in after.items()}}



def _battles(runs: list[Path], field: str) -> tuple[list, dict[str, str]]:
    """The arena runs' battles, and each of their instructions' category."""
    battles, categories = [], {}
    for run in runs:
        categories.update({k: instruction_category(i, field) for k, i in load_instructions_of(run).items()})
        battles.extend(read_battles(str(run)).battles)
    return battles, categories
