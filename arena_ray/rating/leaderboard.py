"""Leaderboard files of the run-directory contract: leaderboard.json and leaderboard.md. Pure."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from arena_ray.records import Rating


def to_json(ratings: Sequence[Rating], extra: Mapping[str, object] | None = None) -> dict:
    doc: dict = {"models": {r.model: {"rating": round(r.rating, 2), "ci_low": round(r.ci_low, 2),
                                      "ci_high": round(r.ci_high, 2), "battles": r.battles} for r in ratings}}
    if extra:
        doc.update(extra)
    return doc


def to_markdown(ratings: Sequence[Rating], failed: Mapping[str, int] | None = None, title: str = "Leaderboard") -> str:
    failed = failed or {}
    lines = [f"# {title}", "", "| rank | model | rating | 95% CI | battles | failed games |",
             "|---:|---|---:|---|---:|---:|"]
    for rank, r in enumerate(ratings, 1):
        lines.append(f"| {rank} | {r.model} | {r.rating:.1f} | {r.ci_low:.1f} – {r.ci_high:.1f} "
                     f"| {r.battles} | {failed.get(r.model, 0)} |")
    return "\n".join(lines) + "\n"


def write(run_dir: Path, ratings: Sequence[Rating], failed: Mapping[str, int], extra: Mapping[str, object]) -> None:
    doc = to_json(ratings, {"failed_games": dict(failed), **extra})
    (run_dir / "leaderboard.json").write_text(json.dumps(doc, indent=2) + "\n")
    (run_dir / "leaderboard.md").write_text(to_markdown(ratings, failed))
