"""The model-as-judge's agreement with human preference labels (Self-Rewarding LMs, Table 4). Pure.

Human data: PandaLM's test set (`instruction`, `input`, `response1`, `response2`, `annotator1..3` with
0 = tie, 1 = response1 better, 2 = response2 better); the label is the annotators' majority.
The judge scores each response with the rubric; its preference is the sign of the score difference.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.data.ingest import InputError


@dataclass(frozen=True)
class HumanPair:
    pair_id: str
    instruction: str
    response_1: str
    response_2: str
    label: int   # +1: response 1 preferred, -1: response 2, 0: tie


def majority(labels: Sequence[int]) -> Optional[int]:
    value, count = Counter(labels).most_common(1)[0]
    return value if count * 2 > len(labels) else None


def load_pandalm(path: str | Path, offset: int = 0, limit: Optional[int] = None) -> list[HumanPair]:
    """Records [offset, offset+limit) with a majority label; a malformed record is named by index and field."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of records")
    out: list[HumanPair] = []
    for i, rec in enumerate(records[offset:offset + limit if limit else None], start=offset):
        where = f"{path}[{i}]"
        for key in ("instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"):
            if key not in rec:
                raise InputError(f"{where}: missing field '{key}'")
        labels = [rec[f"annotator{k}"] for k in (1, 2, 3)]
        if any(v not in (0, 1, 2) for v in labels):
            raise InputError(f"{where}: annotator labels must be 0, 1 or 2, got {labels}")
        label = majority(labels)
        if label is None:
            continue
        text = rec["instruction"] + (f"\n\n{rec['input']}" if rec.get("input") else "")
        out.append(HumanPair(str(rec.get("idx", i)), text, rec["response1"], rec["response2"],
                             {0: 0, 1: 1, 2: -1}[label]))
    return out


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
