"""The flywheel's closing table, pure: per iteration, data sizes per stage, training loss, each version's
rating (with its 95% CI) on the offline test set, and its win rate against each competitor."""
from __future__ import annotations

from typing import Sequence

from arena_ray.rating.leaderboard import rating_text, summary_of
from arena_ray.rating.matrix import win_rate
from arena_ray.records import Rating


def iteration_row(iteration: int, version: str, stages: Sequence[dict], rating: Rating | None,
                  battles: Sequence, competitors: Sequence[str]) -> dict:
    return {
        "iteration": iteration, "version": version,
        "stages": [{k: s.get(k) for k in ("method", "battles", "sft", "dpo", "rm", "skipped", "loss_first",
                                           "loss_last", "margin_last")} for s in stages],
        **summary_of(rating),
        "win_rate": {c: round(win_rate(battles, version, c)[0], 3) for c in competitors},
    }


def _fmt(v, digits=2) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def to_markdown(rows: Sequence[dict], competitors: Sequence[str]) -> str:
    head = ["iter", "version", "stage", "battles", "sft", "dpo", "rm", "loss first→last", "rating (95% CI)",
            *[f"win vs {c}" for c in competitors]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        rating = rating_text(row)
        wins = [_fmt(row["win_rate"].get(c)) for c in competitors]
        stages = row["stages"] or [{}]
        for k, s in enumerate(stages):
            loss = "skipped: no data" if s.get("skipped") else \
                (f"{_fmt(s.get('loss_first'), 3)}→{_fmt(s.get('loss_last'), 3)}" if s.get("loss_first") is not None else "–")
            cells = [str(row["iteration"]) if k == 0 else "", row["version"] if k == 0 else "",
                     s.get("method") or "base", _fmt(s.get("battles")), _fmt(s.get("sft")), _fmt(s.get("dpo")),
                     _fmt(s.get("rm")), loss, rating if k == 0 else "", *(wins if k == 0 else [""] * len(wins))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
