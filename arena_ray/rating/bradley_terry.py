"""Bradley–Terry ratings with bootstrap confidence intervals. Pure numpy/scipy.

Scale convention as FastChat's arena: P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / scale)), ratings centred
on `base` (or shifted so that an anchor model has a fixed rating). A tie counts as half a win for each side.

Speed: identical outcomes are aggregated into weighted (pair, outcome) rows, so a fit costs O(distinct rows),
not O(battles). The bootstrap resamples battles as multinomial counts over those rows, and fits all rounds
at once with a batched Newton method (one M×M solve per round and iteration).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.special import expit

from arena_ray.records import Battle, Rating

OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
# A whisper of L2 keeps the optimum finite when a model won or lost every battle.
L2 = 1e-4


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
    for n, (a, b, winner) in enumerate(battles):
        if winner not in OUTCOME:
            raise ValueError(f"battle {n}: unknown winner label '{winner}' in {a} vs {b} "
                             f"(expected one of {sorted(OUTCOME)})")
        if a == b:
            raise ValueError(f"battle {n}: model '{a}' battles itself")
        key = (index[a], index[b], OUTCOME[winner])
        keys[key] = keys.get(key, 0) + 1
    rows = np.array(list(keys.keys()), dtype=float).reshape(-1, 3)
    return Aggregated(models, rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2],
                      np.array(list(keys.values()), dtype=float))


def fit_theta(agg: Aggregated, counts: np.ndarray, iterations: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Maximum-likelihood log-strengths for each row of `counts` (R × rows) at once: batched Newton.

    Per round the Hessian is a weighted graph Laplacian plus the L2 term, so it is positive definite.
    """
    counts = np.atleast_2d(counts)
    rounds, m = counts.shape[0], len(agg.models)
    theta = np.zeros((rounds, m))
    totals = counts.sum(axis=1, keepdims=True)
    w = counts / np.maximum(totals, 1)
    eye = np.eye(m)
    for _ in range(iterations):
        d = theta[:, agg.idx_a] - theta[:, agg.idx_b]
        p = expit(d)
        g_row = w * (p - agg.outcome)
        grad = np.zeros((rounds, m))
        np.add.at(grad.T, agg.idx_a, g_row.T)
        np.add.at(grad.T, agg.idx_b, -g_row.T)
        grad += 2 * L2 * theta
        s = w * p * (1 - p)
        hess = np.zeros((rounds, m, m))
        np.add.at(hess, (slice(None), agg.idx_a, agg.idx_a), s)
        np.add.at(hess, (slice(None), agg.idx_b, agg.idx_b), s)
        np.add.at(hess, (slice(None), agg.idx_a, agg.idx_b), -s)
        np.add.at(hess, (slice(None), agg.idx_b, agg.idx_a), -s)
        hess += 2 * L2 * eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        theta -= step
        if np.abs(step).max() < tol:
            break
    return theta - theta.mean(axis=1, keepdims=True)


def to_elo(theta: np.ndarray, scale: float, base: float) -> np.ndarray:
    return base + scale * theta / math.log(10)


def _anchor_shift(models: Sequence[str], ratings: np.ndarray, anchor: Optional[tuple[str, float]]) -> np.ndarray:
    if anchor is None:
        return ratings
    name, value = anchor
    if name not in models:
        raise ValueError(f"anchor model '{name}' is not among the rated models")
    return ratings + (value - ratings[..., list(models).index(name)])[..., None]


def parse_anchor(text: str) -> tuple[str, float]:
    name, _, value = text.rpartition(":")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"anchor '{text}' is not MODEL:RATING") from None


def fit(battles: Sequence[tuple[str, str, str]], *, bootstrap_rounds: int = 100, seed: int = 0,
        scale: float = 400.0, base: float = 1000.0, anchor: Optional[tuple[str, float]] = None) -> list[Rating]:
    """Ratings with 95% percentile-bootstrap CIs (battles resampled with replacement), best first."""
    if not battles:
        raise ValueError("no battles to rate")
    agg = aggregate(battles)
    point = _anchor_shift(agg.models, to_elo(fit_theta(agg, agg.count)[0], scale, base), anchor)
    low, high = point.copy(), point.copy()
    if bootstrap_rounds > 0:
        boots = bootstrap(agg, bootstrap_rounds, seed, scale, base, anchor)
        low, high = np.nanpercentile(boots, 2.5, axis=0), np.nanpercentile(boots, 97.5, axis=0)
    n = len(agg.models)
    games = np.bincount(agg.idx_a, agg.count, n) + np.bincount(agg.idx_b, agg.count, n)
    ratings = [Rating(m, float(point[i]), float(min(low[i], point[i])), float(max(high[i], point[i])),
                      int(games[i])) for i, m in enumerate(agg.models)]
    return sorted(ratings, key=lambda r: -r.rating)


def bootstrap(agg: Aggregated, rounds: int, seed: int, scale: float, base: float,
              anchor: Optional[tuple[str, float]] = None, chunk: int = 64) -> np.ndarray:
    """Ratings of `rounds` bootstrap resamples (rounds × models), fitted in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    total = int(agg.count.sum())
    samples = rng.multinomial(total, agg.count / total, size=rounds).astype(float)
    fits = [fit_theta(agg, samples[i:i + chunk]) for i in range(0, rounds, chunk)]
    ratings = _anchor_shift(agg.models, to_elo(np.concatenate(fits), scale, base), anchor)
    # A model drawn into no battle of a resample has no estimate there (not the base rating).
    m = len(agg.models)
    present = np.stack([np.bincount(agg.idx_a, s, m) + np.bincount(agg.idx_b, s, m) for s in samples]) > 0
    return np.where(present, ratings, np.nan)


def fit_battles(battles: Sequence[Battle], **kwargs) -> list[Rating]:
    return fit([(b.model_a, b.model_b, b.winner) for b in battles], **kwargs)
