"""Leaderboard files: leaderboard.json, leaderboard.md and leaderboard.csv (`model,rating,ci_low,ci_high,rank_ub,
battles`), written atomically; JSON is always valid (no NaN or Infinity: an unbounded end is null). Pure."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Mapping, Optional, Sequence

from arena_ray.rating.bradley_terry import describe_separation
from arena_ray.records import Rating
from arena_ray.records.tables import json_text, write_text_atomic

CSV_COLUMNS = ("model", "rating", "ci_low", "ci_high", "rank_ub", "battles")


def _r(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 2)


def to_json(ratings: Sequence[Rating], extra: Mapping[str, object] | None = None) -> dict:
    doc: dict = {"models": {r.model: {"rating": _r(r.rating), "ci_low": _r(r.ci_low), "ci_high": _r(r.ci_high),
                                      "battles": r.battles, "rank_ub": r.rank_ub,
                                      "rank_interval": [r.rank_best, r.rank_worst],
                                      **({"separated": r.separated} if r.separated else {})} for r in ratings}}
    notes = describe_separation(ratings)
    if notes:
        doc["separation"] = notes
    if extra:
        doc.update(extra)
    return doc


def summary_of(r: Optional[Rating]) -> dict:
    """A model's rating, interval and placement in a workflow's summary (rounded; None where unbounded)."""
    if r is None:
        return {"rating": None, "ci": None}
    out = {"rating": None if r.rating is None else round(r.rating, 1),
           "ci": None if r.rating is None else [None if r.ci_low is None else round(r.ci_low, 1),
                                                 None if r.ci_high is None else round(r.ci_high, 1)]}
    return {**out, "separated": r.separated} if r.separated else out


def rating_text(entry: Optional[dict]) -> str:
    """`1012 (980–1044)` for a summary_of() entry; its placement for a separated model; – when unrated."""
    if not entry or entry.get("rating") is None:
        return {"above": "above all rated", "below": "below all rated"}.get((entry or {}).get("separated"), "–")
    low, high = entry["ci"]
    return f"{entry['rating']:.0f} ({'−∞' if low is None else f'{low:.0f}'}–{'∞' if high is None else f'{high:.0f}'})"


def _cell(x: Optional[float], none: str = "–") -> str:
    return none if x is None else f"{x:.1f}"


def to_markdown(ratings: Sequence[Rating], failed: Mapping[str, int] | None = None, title: str = "Leaderboard") -> str:
    failed = failed or {}
    lines = [f"# {title}", "", "| rank (UB) | rank 95% | model | rating | 95% CI | battles | failed games |",
             "|---:|---|---|---:|---|---:|---:|"]
    for r in ratings:
        rating = {"above": "above all rated", "below": "below all rated", "apart": "not comparable"}.get(
            r.separated, _cell(r.rating))
        # An open end (resamples that separated the model) is unbounded, not unknown.
        interval = "" if r.separated else f"{_cell(r.ci_low, '−∞')} – {_cell(r.ci_high, '∞')}"
        span = f"{r.rank_best}" if r.rank_best == r.rank_worst else f"{r.rank_best}–{r.rank_worst}"
        lines.append(f"| {r.rank_ub} | {span} | {r.model} | {rating} | {interval} | {r.battles} | "
                     f"{failed.get(r.model, 0)} |")
    notes = describe_separation(ratings)
    if notes:
        lines += ["", "Separated (no finite rating exists; shown in their place, not fitted):"]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def to_csv(ratings: Sequence[Rating]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in ratings:
        writer.writerow([r.model, "" if r.rating is None else round(r.rating, 2),
                         "" if r.ci_low is None else round(r.ci_low, 2),
                         "" if r.ci_high is None else round(r.ci_high, 2), r.rank_ub, r.battles])
    return out.getvalue()


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def write(run_dir: Path, ratings: Sequence[Rating], failed: Mapping[str, int], extra: Mapping[str, object],
          title: str = "Leaderboard") -> None:
    doc = to_json(ratings, {"failed_games": dict(failed), **extra})
    _write(run_dir / "leaderboard.json", json_text(doc, indent=2) + "\n")
    _write(run_dir / "leaderboard.md", to_markdown(ratings, failed, title))
    _write(run_dir / "leaderboard.csv", to_csv(ratings))
