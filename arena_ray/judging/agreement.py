"""A judge's agreement with human preference labels (Self-Rewarding LMs, Table 4). Pure.

The judge scores each response of a human-labelled pair; its preference is the sign of the score difference.
"""
from __future__ import annotations

from typing import Optional, Sequence

from arena_ray.records import HumanPair


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def agreement(pairs: Sequence[HumanPair], scores: dict[tuple[str, int], Optional[float]]) -> dict:
    """scores[(pair_id, 1 or 2)]: the judge's mean rubric score of that response (None: unparsed).

    pairwise_accuracy: over pairs with a human preference (not a tie) and both responses scored, how often
    the judge prefers the same response (a judge tie counts as wrong). Spearman / Kendall: rank correlation of
    the judge's score difference with the human label (+1/0/-1) over all scored pairs.
    """
    from scipy.stats import kendalltau, spearmanr

    diffs, labels, correct, decisive, judge_ties = [], [], 0, 0, 0
    for p in pairs:
        s1, s2 = scores.get((p.pair_id, 1)), scores.get((p.pair_id, 2))
        if s1 is None or s2 is None:
            continue
        diffs.append(s1 - s2)
        labels.append(p.label)
        if p.label != 0:
            decisive += 1
            correct += _sign(s1 - s2) == p.label
            judge_ties += s1 == s2
    out = {"pairs": len(pairs), "scored": len(diffs), "decisive": decisive,
           "pairwise_accuracy": round(correct / decisive, 4) if decisive else None,
           "judge_tie_rate": round(judge_ties / decisive, 4) if decisive else None,
           "spearman": None, "kendall_tau": None}
    if len(set(diffs)) > 1 and len(set(labels)) > 1:
        out["spearman"] = round(float(spearmanr(diffs, labels).statistic), 4)
        out["kendall_tau"] = round(float(kendalltau(diffs, labels).statistic), 4)
    return out
