"""The self-rewarding loop's closing table, pure: per iteration, data kept/dropped, the self-judge's scores and
its agreement with human labels, DPO loss, and the new model in the arena: against the previous one, against
M0 (with a bootstrap interval), against the reference (raw and length-controlled), its answers' mean length."""
from __future__ import annotations

from typing import Optional, Sequence

from arena_ray.rating.leaderboard import rating_text
from arena_ray.rating.winrates import head_to_head_text


def _f(v, digits=2) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def to_markdown(rows: Sequence[dict], base: Optional[dict] = None) -> str:
    ref = next((r["arena"].get("reference") for r in rows if r["arena"].get("reference")), None) or \
        (base or {}).get("reference")
    head = ["iter", "model", "pairs kept", "ties", "unscored", "mean score", "scores 0-5", "judge acc",
            "spearman", "kendall", "DPO loss", "win vs prev", "vs M0 (95% CI) W/T/L",
            f"LC win vs {ref}" if ref else "LC win", "raw win", "mean length", "rating (95% CI)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if base:
        lines.append("| " + " | ".join(["0", "M0", *["–"] * 11, _f(base.get("lc_win_rate")),
                                        _f(base.get("raw_win_rate")), _f(base.get("mean_length"), 0),
                                        _base_rating(base)]) + " |")
    for r in rows:
        agree = r["judge_agreement"] or {}
        dpo, arena = r["dpo"], r["arena"]
        loss = "skipped: no pairs" if dpo["skipped"] else f"{_f(dpo['loss_first'], 3)}→{_f(dpo['loss_last'], 3)}"
        hist = "/".join(str(r["score_histogram"][str(k)]) for k in range(6))
        cells = [str(r["iteration"]), f"{r['from']} → {r['to']}", str(r["pairs_kept"]), str(r["dropped_ties"]),
                 str(r["dropped_unscored"]), _f(r["mean_reward"]), hist, _f(agree.get("pairwise_accuracy"), 3),
                 _f(agree.get("spearman"), 3), _f(agree.get("kendall_tau"), 3), loss, _f(arena["win_rate"], 3),
                 head_to_head_text(arena.get("head_to_head")), _f(arena.get("lc_win_rate")),
                 _f(arena.get("raw_win_rate")),
                 _f(arena.get("mean_length"), 0), rating_text(arena["ratings"].get(r["to"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _base_rating(base: dict) -> str:
    """M0's rating in its baseline arena (against the reference alone)."""
    rated = {k: v for k, v in (base.get("ratings") or {}).items() if k != base.get("reference")}
    return rating_text(next(iter(rated.values()), None))
