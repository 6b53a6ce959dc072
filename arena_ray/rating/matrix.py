"""Pairwise win-rate matrices: observed (ties half) and predicted from ratings. Pure numpy."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from arena_ray.rating.bradley_terry import OUTCOME


def observed_win_rates(battles: Sequence[tuple[str, str, str]], models: Sequence[str]) -> np.ndarray:
    """M[i, j] = share of i's battles against j that i won (ties half); NaN where they never met."""
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    games = np.zeros_like(wins)
    for a, b, winner in battles:
        i, j, y = index[a], index[b], OUTCOME[winner]
        wins[i, j] += y
        wins[j, i] += 1 - y
        games[i, j] += 1
        games[j, i] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(games > 0, wins / games, np.nan)


def predicted_win_rates(ratings: Mapping[str, float], models: Sequence[str], scale: float = 400.0) -> np.ndarray:
    r = np.array([ratings[m] for m in models])
    return 1 / (1 + 10 ** ((r[None, :] - r[:, None]) / scale))


def win_rate(battles: Sequence, model: str, opponent: str) -> tuple[float, int]:
    """(wins + ties/2) / games of `model` against `opponent`, and the number of games."""
    score, games = 0.0, 0
    for b in battles:
        if {b.model_a, b.model_b} != {model, opponent}:
            continue
        games += 1
        if b.winner in ("tie", "tie (bothbad)"):
            score += 0.5
        elif (b.winner == "model_a") == (b.model_a == model):
            score += 1
    return (score / games if games else float("nan")), games
