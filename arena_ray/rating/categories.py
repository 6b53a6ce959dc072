"""Boards per category: the battles grouped by a field (data/categories.py), each group rated on its own and
written beside the overall board as <out>/by-<field>/<value>/leaderboard.{json,md,csv}, with a summary
(<out>/categories.json and .md: per field and value, battles, models and the leader)."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.data.battles import BattleRow
from arena_ray.data.categories import category_of
from arena_ray.errors import InputError
from arena_ray.rating import bradley_terry, leaderboard
from arena_ray.records.tables import json_text

MIN_BATTLES = 2


def slug(value: str, taken: set[str]) -> str:
    """A folder name for a category value (letters, digits and dashes), unique among `taken`."""
    base = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:60] or "none"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def write_category_boards(battles: Sequence[BattleRow], fields: Sequence[str], out_dir: Path, *,
                          bootstrap_rounds: int, seed: int, scale: float = 400.0, base: float = 1000.0,
                          anchor: Optional[tuple[str, float]] = None) -> dict:
    """One board per value of each field; a value with fewer than two models or battles gets no board but is
    counted in the summary. Returns the summary (also written)."""
    summary: dict = {}
    for field in fields:
        groups: dict[str, list[BattleRow]] = defaultdict(list)
        unknown = 0
        for b in battles:
            value = category_of(b, field)
            if value is None:
                unknown += 1
            else:
                groups[value].append(b)
        if not groups:
            raise InputError(f"--by {field}: no battle has a '{field}' field, nor a prompt to derive it from")
        taken: set[str] = set()
        rows = []
        for value, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            models = {m for b in group for m in (b.model_a, b.model_b)}
            row = {"value": value, "battles": len(group), "models": len(models)}
            if len(group) >= MIN_BATTLES and len(models) >= 2:
                folder = out_dir / f"by-{slug(field, set())}" / slug(value, taken)
                folder.mkdir(parents=True, exist_ok=True)
                ratings = bradley_terry.fit([b.triple() for b in group], bootstrap_rounds=bootstrap_rounds, seed=seed,
                                            scale=scale, base=base,
                                            anchor=anchor if anchor and anchor[0] in models else None)
                leaderboard.write(folder, ratings, {}, {"category": {"field": field, "value": value}},
                                  title=f"Leaderboard: {field} = {value}")
                row.update(board=str(folder.relative_to(out_dir)), leader=ratings[0].model)
            rows.append(row)
        summary[field] = {"values": rows, "without_value": unknown}
    (out_dir / "categories.json").write_text(json_text(summary, indent=2) + "\n")
    (out_dir / "categories.md").write_text(to_markdown(summary))
    return summary


def to_markdown(summary: dict) -> str:
    lines = ["# Boards per category", ""]
    for field, part in summary.items():
        lines += [f"## {field}", "", "| value | battles | models | leader | board |", "|---|---:|---:|---|---|"]
        for r in part["values"]:
            lines.append(f"| {r['value']} | {r['battles']} | {r['models']} | {r.get('leader', '–')} | "
                         f"{r.get('board', 'too few battles')} |")
        if part["without_value"]:
            lines.append(f"\n{part['without_value']} battles have no {field}.")
        lines.append("")
    return "\n".join(lines)
