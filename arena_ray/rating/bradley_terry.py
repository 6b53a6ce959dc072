"""Bradley–Terry ratings: the exact, unpenalised maximum-likelihood fit with bootstrap confidence intervals and
rank intervals. Pure numpy/scipy.

Scale as FastChat's arena: P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / scale)); a tie counts as half a win for
each side; ratings centred on `base` over the rated models (or shifted so an anchor model has a fixed rating).
Where no finite maximum exists (a model or block never lost, or never won: see separation.py) that block is
left out of the fit and placed above or below the rated block, by name, never by shrinking everyone.

Speed: identical outcomes are aggregated into weighted (pair, outcome) rows, so a fit costs O(distinct rows),
not O(battles). The bootstrap resamples battles with replacement (multinomial counts over the rows, exactly
equivalent) and fits all rounds at once: a batched Newton method with a backtracking line search, one m×m
solve per round and iteration, gradients and Hessians assembled with sparse products.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import expit

from arena_ray.errors import ConfigError, InputError
from arena_ray.rating.separation import Blocks, blocks
from arena_ray.records import Battle, Rating

OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
# Rounds × models × models floats per batch of the bootstrap (bounds the Hessians' memory, ~128 MB).
_BATCH_FLOATS = 16_000_000


@dataclass(frozen=True)
class Aggregated:
    models: tuple[str, ...]
    idx_a: np.ndarray
    idx_b: np.ndarray
    outcome: np.ndarray  # share of the win going to model_a: 1, 0.5 or 0
    count: np.ndarray    # how many battles had this (a, b, outcome)

    @property
    def battles_per_model(self) -> np.ndarray:
        m = len(self.models)
        return np.bincount(self.idx_a, self.count, m) + np.bincount(self.idx_b, self.count, m)


def aggregate(battles: Sequence[tuple[str, str, str]]) -> Aggregated:
    """(model_a, model_b, winner) triples → weighted unique rows."""
    models = tuple(sorted({m for a, b, _ in battles for m in (a, b)}))
    index = {m: i for i, m in enumerate(models)}
    keys: dict[tuple[int, int, float], int] = {}
    for n, (a, b, winner) in enumerate(battles):
        if winner not in OUTCOME:
            raise InputError(f"battle {n}: unknown winner label '{winner}' in {a} vs {b} "
                             f"(expected one of {sorted(OUTCOME)})")
        if a == b:
            raise InputError(f"battle {n}: model '{a}' battles itself")
        key = (index[a], index[b], OUTCOME[winner])
        keys[key] = keys.get(key, 0) + 1
    rows = np.array(list(keys.keys()), dtype=float).reshape(-1, 3)
    return Aggregated(models, rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2],
                      np.array(list(keys.values()), dtype=float))


def aggregate_indices(models: Sequence[str], idx_a: np.ndarray, idx_b: np.ndarray,
                      outcome: np.ndarray) -> Aggregated:
    """The same from arrays (model indices and outcomes 1 / 0.5 / 0): millions of battles without Python objects."""
    m = len(models)
    key = (idx_a.astype(np.int64) * m + idx_b) * 3 + np.rint(outcome * 2).astype(np.int64)
    uniq, count = np.unique(key, return_counts=True)
    pair, code = np.divmod(uniq, 3)
    a, b = np.divmod(pair, m)
    return Aggregated(tuple(models), a, b, code / 2.0, count.astype(float))


class _Design:
    """Sparse maps from rows to models and to unordered pairs, built once per data set."""

    def __init__(self, agg: Aggregated):
        m, n = len(agg.models), len(agg.count)
        self.m = m
        rows = np.arange(n)
        # gradient: +residual at a, -residual at b
        self.signed = csr_matrix((np.r_[np.ones(n), -np.ones(n)], (np.r_[rows, rows], np.r_[agg.idx_a, agg.idx_b])),
                                 shape=(n, m))
        lo, hi = np.minimum(agg.idx_a, agg.idx_b), np.maximum(agg.idx_a, agg.idx_b)
        pairs, self.pair_of_row = np.unique(lo * m + hi, return_inverse=True)
        self.pa, self.pb = np.divmod(pairs, m)
        self.row_to_pair = csr_matrix((np.ones(n), (rows, self.pair_of_row)), shape=(n, len(pairs)))
        p = len(pairs)
        self.pair_to_model = csr_matrix((np.ones(2 * p), (np.r_[np.arange(p), np.arange(p)], np.r_[self.pa, self.pb])),
                                        shape=(p, m))


def _nll(theta: np.ndarray, agg: Aggregated, w: np.ndarray) -> np.ndarray:
    d = theta[:, agg.idx_a] - theta[:, agg.idx_b]
    return (w * (np.logaddexp(0.0, d) - agg.outcome * d)).sum(axis=1)


def fit_theta(agg: Aggregated, counts: np.ndarray, rated: Optional[np.ndarray] = None, iterations: int = 100,
              tol: float = 1e-9, design: Optional[_Design] = None) -> np.ndarray:
    """Maximum-likelihood log-strengths for each row of `counts` (rounds × rows) at once; `rated` (rounds × models,
    bool) marks the models each round fits (their rows only count), the others stay 0. Centred on the rated
    models' mean. Newton with a backtracking line search: the log-likelihood is concave, the Hessian a weighted
    graph Laplacian, made invertible on the rated block by a rank-one term along its all-ones vector."""
    counts = np.atleast_2d(counts).astype(float)
    rounds, m = counts.shape[0], len(agg.models)
    rated = np.ones((rounds, m), dtype=bool) if rated is None else rated
    dz = design or _Design(agg)
    w = counts * (rated[:, agg.idx_a] & rated[:, agg.idx_b])
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1.0)   # per-battle scale: a well-conditioned problem
    u = rated / np.maximum(rated.sum(axis=1, keepdims=True), 1)
    theta = np.zeros((rounds, m))
    loss = _nll(theta, agg, w)
    active = np.ones(rounds, dtype=bool)
    for _ in range(iterations):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        th, wa = theta[idx], w[idx]
        p = expit(th[:, agg.idx_a] - th[:, agg.idx_b])
        grad = (dz.signed.T @ (wa * (p - agg.outcome)).T).T
        s = (dz.row_to_pair.T @ (wa * p * (1 - p)).T).T                 # per unordered pair
        hess = np.zeros((len(idx), m, m))
        hess[:, dz.pa, dz.pb] = -s
        hess[:, dz.pb, dz.pa] = -s
        diag = (dz.pair_to_model.T @ s.T).T
        ridx = np.arange(m)
        hess[:, ridx, ridx] = diag + ~rated[idx]                          # unrated models: a fixed 0
        scale = np.maximum(diag.max(axis=1), 1e-12)[:, None, None]
        hess += scale * (u[idx][:, :, None] * u[idx][:, None, :]) * m
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        done = np.zeros(len(idx), dtype=bool)
        t = np.ones(len(idx))
        new = th - step
        new_loss = _nll(new, agg, wa)
        for _ in range(30):   # halve the step where it does not lower the loss
            worse = new_loss > loss[idx] + 1e-13 * np.abs(loss[idx])
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
            new = np.where(worse[:, None], th - t[:, None] * step, new)
            new_loss = np.where(worse, _nll(new, agg, wa), new_loss)
        done = np.abs(t[:, None] * step).max(axis=1) < tol
        theta[idx], loss[idx] = new, new_loss
        active[idx[done]] = False
    centre = (theta * u).sum(axis=1, keepdims=True)
    return np.where(rated, theta - centre, 0.0)


def to_elo(theta: np.ndarray, scale: float, base: float) -> np.ndarray:
    return base + scale * theta / math.log(10)


def parse_anchor(text: str) -> tuple[str, float]:
    name, _, value = text.rpartition(":")
    try:
        rating = float(value)
    except ValueError:
        raise ConfigError(f"--anchor '{text}' is not MODEL:RATING") from None
    if not name or not math.isfinite(rating):
        raise ConfigError(f"--anchor '{text}': needs a model name and a finite rating")
    return name, rating


def _anchor(models: Sequence[str], ratings: np.ndarray, anchor: Optional[tuple[str, float]], base: float):
    if anchor is None:
        return ratings
    name, value = anchor
    return ratings + (value - ratings[..., list(models).index(name)])[..., None]


def round_blocks(agg: Aggregated, samples: np.ndarray, rated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bootstrap round, the models it can rate (a resample can separate what the data did not), and what the
    others are worth in that round: +inf above the rated block, -inf below it, NaN apart or absent."""
    m = len(agg.models)
    fitted = np.zeros((len(samples), m), dtype=bool)
    fill = np.full((len(samples), m), np.nan)
    for r, w in enumerate(samples):
        present = ((np.bincount(agg.idx_a, w, m) + np.bincount(agg.idx_b, w, m)) > 0) & rated
        split = blocks(m, agg.idx_a, agg.idx_b, agg.outcome, w, present)
        fitted[r] = split.rated
        fill[r] = [np.inf if p == "above" else -np.inf if p == "below" else np.nan for p in split.place]
    return fitted, fill


def bootstrap(agg: Aggregated, rounds: int, seed: int, rated: np.ndarray, scale: float = 400.0,
              base: float = 1000.0, anchor: Optional[tuple[str, float]] = None) -> np.ndarray:
    """Ratings of `rounds` resamples of the battles (rounds × models): ±inf for a model a resample separated
    above or below the others, NaN for one it could not place (it drew no battle)."""
    rng = np.random.default_rng(seed)
    total = int(agg.count.sum())
    samples = rng.multinomial(total, agg.count / total, size=rounds).astype(float)
    samples[:, ~np.isin(np.arange(len(agg.count)), _rows_within(agg, rated))] = 0.0
    fitted, fill = round_blocks(agg, samples, rated)
    design = _Design(agg)
    batch = max(1, _BATCH_FLOATS // max(len(agg.models) ** 2, 1))
    theta = np.concatenate([fit_theta(agg, samples[i:i + batch], fitted[i:i + batch], design=design)
                            for i in range(0, rounds, batch)])
    ratings = _anchor(agg.models, to_elo(theta, scale, base), anchor, base)
    if anchor is not None:  # a round that could not rate the anchor cannot place anyone against it
        ratings[~fitted[:, agg.models.index(anchor[0])]] = np.nan
    return np.where(fitted, ratings, fill)


def _rows_within(agg: Aggregated, rated: np.ndarray) -> np.ndarray:
    return np.flatnonzero(rated[agg.idx_a] & rated[agg.idx_b])


def percentile_interval(boots: np.ndarray, level: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval per model (linear interpolation, as numpy's and FastChat's default).
    Rounds that separated a model count as ±inf, so an end that reaches into them is unbounded (±inf)."""
    big = 1e12
    finite = np.clip(boots, -big, big)
    tail = (100 - level) / 2
    low, high = np.nanpercentile(finite, tail, axis=0), np.nanpercentile(finite, 100 - tail, axis=0)
    return np.where(low <= -big / 10, -np.inf, low), np.where(high >= big / 10, np.inf, high)


def rank_ub(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """Chatbot Arena's rank (UB): 1 + the number of models whose lower bound is above this one's upper bound."""
    return 1 + (ci_low[None, :] > ci_high[:, None]).sum(axis=1)


def rank_interval(boots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of each model's rank over the bootstrap rounds (1 = best; rounds that could not rate a model
    leave it out of that round's ranking)."""
    values = np.where(np.isnan(boots), -np.inf, boots)
    ranks = 1 + (values[:, None, :] > values[:, :, None]).sum(axis=2)
    ranks = np.where(np.isnan(boots), np.nan, ranks)
    return np.nanpercentile(ranks, 2.5, axis=0, method="lower"), np.nanpercentile(ranks, 97.5, axis=0, method="higher")


def fit(battles: Sequence[tuple[str, str, str]], *, bootstrap_rounds: int = 100, seed: int = 0,
        scale: float = 400.0, base: float = 1000.0, anchor: Optional[tuple[str, float]] = None) -> list[Rating]:
    """Ratings with 95% percentile-bootstrap intervals and rank intervals, best first; separated models last
    of their side, flagged."""
    if not battles:
        raise InputError("no battles to rate")
    return fit_aggregated(aggregate(battles), bootstrap_rounds=bootstrap_rounds, seed=seed, scale=scale, base=base,
                          anchor=anchor)


def fit_aggregated(agg: Aggregated, *, bootstrap_rounds: int = 100, seed: int = 0, scale: float = 400.0,
                   base: float = 1000.0, anchor: Optional[tuple[str, float]] = None) -> list[Rating]:
    if bootstrap_rounds < 0:
        raise ConfigError(f"bootstrap rounds must be >= 0, got {bootstrap_rounds}")
    m = len(agg.models)
    split = blocks(m, agg.idx_a, agg.idx_b, agg.outcome, agg.count)
    if anchor is not None:
        _check_anchor(agg, split, anchor)
    point = _anchor(agg.models, to_elo(fit_theta(agg, agg.count, split.rated[None, :])[0], scale, base), anchor,
                    base)
    low = high = point
    best = worst = None
    if bootstrap_rounds > 0:
        boots = bootstrap(agg, bootstrap_rounds, seed, split.rated, scale, base, anchor)
        with warnings.catch_warnings():  # a model no round could place has an all-NaN column: no interval
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = percentile_interval(boots)
            best, worst = rank_interval(np.where(split.rated[None, :], boots, np.nan))
        low, high = np.fmin(low, point), np.fmax(high, point)
    return _board(agg, split, point, low, high, best, worst)


def _check_anchor(agg: Aggregated, split: Blocks, anchor: tuple[str, float]) -> None:
    name = anchor[0]
    if name not in agg.models:
        raise ConfigError(f"anchor model '{name}' is not among the rated models ({', '.join(agg.models)})")
    if not split.rated[agg.models.index(name)]:
        raise ConfigError(f"anchor model '{name}' is separated from the rated block (it won or lost every battle "
                          f"against it): its rating is unbounded, anchor another model")


def _board(agg: Aggregated, split: Blocks, point, low, high, best, worst) -> list[Rating]:
    games = agg.battles_per_model
    rated = np.flatnonzero(split.rated)
    ub = rank_ub(low[rated], high[rated])
    above = sum(1 for p in split.place if p == "above")
    out = []
    for k, i in enumerate(rated):
        b = int(best[i]) if best is not None and np.isfinite(best[i]) else int(ub[k])
        w = int(worst[i]) if worst is not None and np.isfinite(worst[i]) else int(ub[k])
        out.append(Rating(agg.models[i], float(point[i]), _finite(low[i]), _finite(high[i]), int(games[i]),
                          rank_ub=int(ub[k]) + above, rank_best=b + above, rank_worst=w + above))
    out.sort(key=lambda r: -r.rating)
    for place, rank in (("above", 1), ("below", above + len(rated) + 1), ("apart", 0)):
        for i in (i for i, p in enumerate(split.place) if p == place):
            out.append(Rating(agg.models[i], None, None, None, int(games[i]), rank_ub=rank, rank_best=rank,
                              rank_worst=rank, separated=place))
    return sorted(out, key=lambda r: (r.separated != "above", r.separated == "apart", r.separated == "below"))


def _finite(x: float) -> Optional[float]:
    """An interval end, or None where resamples separated the model (unbounded)."""
    return float(x) if np.isfinite(x) else None


def fit_battles(battles: Sequence[Battle], **kwargs) -> list[Rating]:
    return fit([(b.model_a, b.model_b, b.winner) for b in battles], **kwargs)


def describe_separation(ratings: Sequence[Rating]) -> list[str]:
    """One line per separated model: what it did and how it is treated (for the console and the board)."""
    rated = [r.model for r in ratings if not r.separated]
    what = {"above": "never lost to the rated models", "below": "never beat the rated models",
            "apart": "was never compared with the rated models"}
    return [f"{r.model} {what[r.separated]}: no finite rating exists; left out of the fit and placed "
            f"{'above' if r.separated == 'above' else 'below' if r.separated == 'below' else 'apart from'} "
            f"{', '.join(rated) if len(rated) <= 4 else f'the {len(rated)} rated models'}"
            for r in ratings if r.separated]

