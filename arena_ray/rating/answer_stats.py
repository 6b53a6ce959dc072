"""What a model's eval answers look like to the judge, pure: their mean length and mean judge score, read from
its battles (the reward-hacking guard's inputs: both papers saw answers grow across iterations)."""
from __future__ import annotations

from statistics import mean
from typing import Sequence


def answer_stats(battles: Sequence, version: str) -> dict:
    """Mean characters of the version's eval answers (one per question) and the judge's mean score of them."""
    texts: dict[str, str] = {}
    scores: list[float] = []
    for b in battles:
        for side in ("a", "b"):
            if getattr(b, f"model_{side}") != version:
                continue
            text = getattr(b, f"text_{side}")
            if text is not None:
                texts.setdefault(b.question_id, text)
            score = dict(b.fields).get(f"score_{side}")
            if isinstance(score, (int, float)):
                scores.append(float(score))
    return {"mean_length": round(mean(len(t) for t in texts.values()), 1) if texts else None,
            "judge_score": round(mean(scores), 3) if scores else None}
