"""Bradley–Terry ratings with bootstrap confidence intervals. Pure numpy/scipy.

Scale convention as FastChat's arena: P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / scale)), ratings centred
on `base`. A tie counts as half a win for each side. Identical outcomes are aggregated into weighted rows, so
the fit's cost grows with the number of distinct (pair, outcome) rows, not with the number of battles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from arena_ray.records import Battle, Rating

_OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
# A whisper of L2 keeps the optimum finite when a model won or lost every battle.
_L2 = 1e-4


@dataclass(frozen=True)
class Aggregated:
    models: tuple[str, ...]
    idx_a: np.ndarray
    idx_b: np.ndarray
    outcome: np.ndarray  # share of the win going to model_a: 1, 0.5 or 0
    count: np.ndarray    # how many battles had this (a, b, outcome)


def aggregate(battles: Sequence[tuple[str, str, str]]) -> Aggregated:
    """(model_a, model_b, winner) triples → weighted unique rows."""
    models = tuple(sorted({m for a, b, _ in battles for m in (a, b)}))
    index = {m: i for i, m in enumerate(models)}
    keys: dict[tuple[int, int, float], int] = {}
    for a, b, winner in battles:
        if winner not in _OUTCOME:
            raise ValueError(f"unknown winner label '{winner}' in battle {a} vs {b} "
                             f"(expected one of {sorted(_OUTCOME)})")
        if a == b:
            raise ValueError(f"model '{a}' battles itself")
        key = (index[a], index[b], _OUTCOME[winner])
        keys[key] = keys.get(key, 0) + 1
    rows = np.array(list(keys.keys()), dtype=float).reshape(-1, 3)
    return Aggregated(models, rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2],
                      np.array(list(keys.values()), dtype=float))


def _fit_theta(agg: Aggregated, count: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    n = len(agg.models)
    total = count.sum()

    def loss_and_grad(theta: np.ndarray):
        d = theta[agg.idx_a] - theta[agg.idx_b]
        nll = -(count * (agg.outcome * log_expit(d) + (1 - agg.outcome) * log_expit(-d))).sum() / total
        g_d = count * (expit(d) - agg.outcome) / total
        grad = np.bincount(agg.idx_a, g_d, n) - np.bincount(agg.idx_b, g_d, n)
        return nll + _L2 * theta @ theta, grad + 2 * _L2 * theta

    x0 = np.zeros(n) if start is None else start
    result = minimize(loss_and_grad, x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-10})
    theta = result.x
    return theta - theta.mean()


def to_elo(theta: np.ndarray, scale: float, base: float) -> np.ndarray:
    return base + scale * theta / math.log(10)


def fit(battles: Sequence[tuple[str, str, str]], *, bootstrap_rounds: int = 100, seed: int = 0,
        scale: float = 400.0, base: float = 1000.0) -> list[Rating]:
    """Ratings with 95% percentile-bootstrap CIs (battles resampled with replacement), best first."""
    if not battles:
        raise ValueError("no battles to rate")
    agg = aggregate(battles)
    theta = _fit_theta(agg, agg.count)
    point = to_elo(theta, scale, base)
    low, high = point.copy(), point.copy()
    if bootstrap_rounds > 0:
        rng = np.random.default_rng(seed)
        total = int(agg.count.sum())
        samples = rng.multinomial(total, agg.count / total, size=bootstrap_rounds)
        boots = np.stack([to_elo(_fit_theta(agg, s.astype(float), theta), scale, base) for s in samples])
        low, high = np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)
    games = np.bincount(agg.idx_a, agg.count, len(agg.models)) + np.bincount(agg.idx_b, agg.count, len(agg.models))
    ratings = [Rating(m, float(point[i]), float(min(low[i], point[i])), float(max(high[i], point[i])),
                      int(games[i])) for i, m in enumerate(agg.models)]
    return sorted(ratings, key=lambda r: -r.rating)


def fit_battles(battles: Sequence[Battle], **kwargs) -> list[Rating]:
    return fit([(b.model_a, b.model_b, b.winner) for b in battles], **kwargs)
