"""The self-rewarding loop's closing table, pure: per iteration, data kept/dropped, the self-judge's scores and
its agreement with human labels, DPO loss, and the new model against the previous one in the arena."""
from __future__ import annotations

from typing import Sequence

from arena_ray.rating.leaderboard import rating_text


def _f(v, digits=2) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def to_markdown(rows: Sequence[dict]) -> str:
    head = ["iter", "model", "pairs kept", "ties", "unscored", "mean score", "scores 0-5", "judge acc",
            "spearman", "kendall", "DPO loss", "win vs prev", "rating (95% CI)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        agree = r["judge_agreement"] or {}
        dpo = r["dpo"]
        loss = "skipped: no pairs" if dpo["skipped"] else f"{_f(dpo['loss_first'], 3)}→{_f(dpo['loss_last'], 3)}"
        rating = rating_text(r["arena"]["ratings"].get(r["to"]))
        hist = "/".join(str(r["score_histogram"][str(k)]) for k in range(6))
        cells = [str(r["iteration"]), f"{r['from']} → {r['to']}", str(r["pairs_kept"]), str(r["dropped_ties"]),
                 str(r["dropped_unscored"]), _f(r["mean_reward"]), hist, _f(agree.get("pairwise_accuracy"), 3),
                 _f(agree.get("spearman"), 3), _f(agree.get("kendall_tau"), 3), loss, _f(r["arena"]["win_rate"], 3),
                 rating]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
