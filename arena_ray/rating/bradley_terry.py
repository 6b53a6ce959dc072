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
# Floats per array of a bootstrap batch (rounds × max(models², pairs)): bounds the working memory (~16 MB each).
_BATCH_FLOATS = 2_000_000


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


@dataclass(frozen=True)
class Pairs:
    """What the likelihood needs per unordered pair (pa < pb): its battles `n` and pa's win share `w` (wins, plus
    half the ties); and, to resample battles, the shares of pa's wins and of ties among them."""

    m: int
    pa: np.ndarray
    pb: np.ndarray
    n: np.ndarray
    w: np.ndarray
    p_win: np.ndarray
    p_tie: np.ndarray
    signed: csr_matrix      # pairs × models: +1 at pa, -1 at pb (gradients)
    touches: csr_matrix     # pairs × models: 1 at pa and pb (Hessian diagonals, battles per model)

    @classmethod
    def of(cls, agg: Aggregated) -> "Pairs":
        m = len(agg.models)
        lo, hi = np.minimum(agg.idx_a, agg.idx_b), np.maximum(agg.idx_a, agg.idx_b)
        keys, pair = np.unique(lo * m + hi, return_inverse=True)
        pa, pb = np.divmod(keys, m)
        share = np.where(agg.idx_a == lo, agg.outcome, 1 - agg.outcome)   # the outcome for the lower index
        n = np.bincount(pair, agg.count, len(keys))
        w = np.bincount(pair, agg.count * share, len(keys))
        wins = np.bincount(pair, agg.count * (share == 1), len(keys))
        ties = np.bincount(pair, agg.count * (share == 0.5), len(keys))
        k, rows = len(keys), np.arange(len(keys))
        signed = csr_matrix((np.r_[np.ones(k), -np.ones(k)], (np.r_[rows, rows], np.r_[pa, pb])), shape=(k, m))
        touches = csr_matrix((np.ones(2 * k), (np.r_[rows, rows], np.r_[pa, pb])), shape=(k, m))
        return cls(m, pa, pb, n, w, wins / n, ties / n, signed, touches)

    def resample(self, rng: np.random.Generator, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, w) of `rounds` resamples of the battles with replacement: how many battles each pair draws, then
        how they split into wins, ties and losses (a two-level multinomial: the same law as drawing battles)."""
        total = int(self.n.sum())
        n = rng.multinomial(total, self.n / total, size=rounds)
        wins = rng.binomial(n, self.p_win)
        rest = np.where(self.p_win < 1, self.p_tie / np.where(self.p_win < 1, 1 - self.p_win, 1), 0.0)
        ties = rng.binomial(n - wins, np.clip(rest, 0, 1))
        return n.astype(float), wins + 0.5 * ties

    def blocks(self, n: np.ndarray, w: np.ndarray, within: np.ndarray) -> Blocks:
        """The strongly connected blocks of one round's data, among the models `within`."""
        present = ((self.touches.T @ n) > 0) & within
        keep = n * (within[self.pa] & within[self.pb])
        # as (a, b, outcome) rows: pa's wins as one row, pb's as the other
        a = np.r_[self.pa, self.pa]
        b = np.r_[self.pb, self.pb]
        y = np.r_[np.ones(len(n)), np.zeros(len(n))]
        mass = np.r_[np.where(keep > 0, w, 0), np.where(keep > 0, keep - w, 0)]
        return blocks(self.m, a, b, y, mass, present)


def _nll(theta: np.ndarray, pr: Pairs, n: np.ndarray, w: np.ndarray) -> np.ndarray:
    d = theta[:, pr.pa] - theta[:, pr.pb]
    return (n * np.logaddexp(0.0, d) - w * d).sum(axis=1)


def _derivatives(pr: Pairs, theta: np.ndarray, n: np.ndarray, w: np.ndarray, rated: np.ndarray,
                 u: np.ndarray, hessian: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Gradient of the loss per round, and its Hessian made invertible on the rated block: a rank-one term
    along the block's all-ones vector (the loss does not change when every strength moves together), a fixed
    diagonal for unrated models, and a whisper of damping (which moves no optimum)."""
    p = expit(theta[:, pr.pa] - theta[:, pr.pb])
    grad = (pr.signed.T @ (n * p - w).T).T
    if not hessian:
        return grad, None
    s = n * p * (1 - p)
    rounds, m = theta.shape
    hess = np.zeros((rounds, m, m))
    hess[:, pr.pa, pr.pb] = -s
    hess[:, pr.pb, pr.pa] = -s
    diag = (pr.touches.T @ s.T).T
    scale = np.maximum(diag.max(axis=1), 1e-12)
    ridx = np.arange(m)
    hess[:, ridx, ridx] = diag * (1 + 1e-10) + 1e-12 + ~rated   # a floor: solvable even where p(1-p) underflows
    for r in range(rounds):   # one round at a time: no (rounds × m × m) temporaries
        hess[r] += np.outer(u[r], u[r] * (scale[r] * m))
    return grad, hess


def _chord(pr: Pairs, n: np.ndarray, w: np.ndarray, start: np.ndarray, hess: np.ndarray, tol: float,
           iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Newton's chord method for bootstrap rounds of the same block as the data: every round reuses the data's
    Hessian at its optimum (one factorisation for all), so an iteration costs a gradient and a product. A
    resample is close to the data, so this converges fast; rounds that do not get the full method."""
    from scipy.linalg import cho_factor, cho_solve

    factor = cho_factor(hess)
    total = np.maximum(n.sum(axis=1, keepdims=True), 1.0)
    n, w = n / total, w / total
    theta = np.broadcast_to(start, (len(n), pr.m)).copy()
    rated = np.ones_like(theta, dtype=bool)
    active = np.ones(len(n), dtype=bool)
    for _ in range(iterations):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        grad, _ = _derivatives(pr, theta[idx], n[idx], w[idx], rated[idx], None, hessian=False)
        step = cho_solve(factor, grad.T).T
        theta[idx] -= step
        active[idx[np.abs(step).max(axis=1) < tol]] = False
    return theta - theta.mean(axis=1, keepdims=True), ~active


def fit_theta(pr: Pairs, n: np.ndarray, w: np.ndarray, rated: Optional[np.ndarray] = None, iterations: int = 100,
              tol: float = 1e-7, start: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood log-strengths for every round (rows of n, w: rounds × pairs) at once; `rated` (rounds ×
    models) marks the models each round fits (pairs with another model do not count; the others stay 0).
    Returns (theta centred on each round's rated models, converged per round). Newton with a backtracking line
    search: the log-likelihood is concave and its Hessian a weighted graph Laplacian, made invertible on the
    rated block by a rank-one term along its all-ones vector (plus a whisper of damping, which moves no
    optimum). A round whose data have no finite maximum (separation) does not converge: its strengths run off.
    `start`: where to begin (a bootstrap round begins at the data's own fit, a few steps from its optimum)."""
    n, w = np.atleast_2d(n).astype(float), np.atleast_2d(w).astype(float)
    rounds, m = n.shape[0], pr.m
    rated = np.ones((rounds, m), dtype=bool) if rated is None else rated
    inside = rated[:, pr.pa] & rated[:, pr.pb]
    total = np.maximum((n * inside).sum(axis=1, keepdims=True), 1.0)
    n, w = n * inside / total, w * inside / total          # per-battle scale: a well-conditioned problem
    u = rated / np.maximum(rated.sum(axis=1, keepdims=True), 1)
    theta = np.zeros((rounds, m)) if start is None else np.where(rated, np.broadcast_to(start, (rounds, m)), 0.0)
    loss = _nll(theta, pr, n, w)
    stale = np.zeros(rounds, dtype=bool)   # loss not updated after a small (unchecked) step
    active = np.ones(rounds, dtype=bool)
    for _ in range(iterations):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        th, na, wa = theta[idx], n[idx], w[idx]
        grad, hess = _derivatives(pr, th, na, wa, rated[idx], u[idx])
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        t = np.ones(len(idx))
        new = th - step
        # Near the optimum a full Newton step always lowers the (self-concordant-like) loss: check only big steps.
        far = np.abs(step).max(axis=1) > 0.25
        refresh = far & stale[idx]
        if refresh.any():
            loss[idx[refresh]] = _nll(th[refresh], pr, na[refresh], wa[refresh])
        new_loss = loss[idx].copy()
        if far.any():
            new_loss[far] = _nll(new[far], pr, na[far], wa[far])
        for _ in range(40):   # halve the step where it does not lower the loss (far from the optimum)
            worse = far & (new_loss > loss[idx] + 1e-13 * np.abs(loss[idx]))
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
            new = np.where(worse[:, None], th - t[:, None] * step, new)
            new_loss[worse] = _nll(new[worse], pr, na[worse], wa[worse])
        done = np.abs(t[:, None] * step).max(axis=1) < tol
        theta[idx], loss[idx], stale[idx] = new, new_loss, ~far
        active[idx[done]] = False
    centre = (theta * u).sum(axis=1, keepdims=True)
    return np.where(rated, theta - centre, 0.0), ~active


def to_elo(theta: np.ndarray, scale: float, base: float) -> np.ndarray:
    return base + scale * theta / math.log(10)


ANCHOR_LIMIT = 1e6  # beyond it float64 ratings lose the precision that separates models


def parse_anchor(text: str) -> tuple[str, float]:
    name, _, value = text.rpartition(":")
    try:
        rating = float(value)
    except ValueError:
        raise ConfigError(f"--anchor '{text}' is not MODEL:RATING") from None
    if not name or not math.isfinite(rating) or abs(rating) > ANCHOR_LIMIT:
        raise ConfigError(f"--anchor '{text}': needs a model name and a finite rating within ±{ANCHOR_LIMIT:g}")
    return name, rating


def _anchor(models: Sequence[str], ratings: np.ndarray, anchor: Optional[tuple[str, float]], base: float):
    if anchor is None:
        return ratings
    name, value = anchor
    return ratings + (value - ratings[..., list(models).index(name)])[..., None]


def bootstrap(agg: Aggregated, rounds: int, seed: int, rated: np.ndarray, scale: float = 400.0,
              base: float = 1000.0, anchor: Optional[tuple[str, float]] = None, pr: Optional[Pairs] = None,
              start: Optional[np.ndarray] = None, hess: Optional[np.ndarray] = None) -> np.ndarray:
    """Ratings of `rounds` resamples of the battles (rounds × models): ±inf for a model a resample separated
    above or below the others, NaN for one it could not place (it drew no battle). Resamples are drawn and
    fitted a batch at a time, so memory stays bounded whatever the number of rounds."""
    pr = pr or Pairs.of(agg)
    rng = np.random.default_rng(seed)
    batch = max(1, _BATCH_FLOATS // max(pr.m ** 2, len(pr.n), 1))
    out = []
    for first in range(0, rounds, batch):
        n, w = pr.resample(rng, min(batch, rounds - first))
        fitted = ((pr.touches.T @ n.T).T > 0) & rated[None, :]
        theta = np.zeros(fitted.shape)
        converged = np.zeros(len(n), dtype=bool)
        whole = fitted.all(axis=1) if hess is not None else converged   # every model in play: the chord method
        if whole.any():
            theta[whole], converged[whole] = _chord(pr, n[whole], w[whole], start, hess, 1e-7)
        rest = np.flatnonzero(~converged)
        if len(rest):
            theta[rest], converged[rest] = fit_theta(pr, n[rest], w[rest], fitted[rest], start=start)
        fill = np.full(theta.shape, np.nan)
        # A resample can separate (or split) what the data did not: those rounds run off or leave a block
        # unconnected. Find their blocks and refit them on their rated block.
        suspect = np.flatnonzero(~converged | (np.abs(theta).max(axis=1) > 25) | _split(pr, n, fitted))
        for r in suspect:
            split = pr.blocks(n[r], w[r], fitted[r])
            fitted[r] = split.rated
            fill[r] = [np.inf if p == "above" else -np.inf if p == "below" else np.nan for p in split.place]
        if len(suspect):
            theta[suspect] = fit_theta(pr, n[suspect], w[suspect], fitted[suspect])[0]
        ratings = _anchor(agg.models, to_elo(theta, scale, base), anchor, base)
        if anchor is not None:  # a round that could not rate the anchor cannot place anyone against it
            ratings[~fitted[:, agg.models.index(anchor[0])]] = np.nan
        out.append(np.where(fitted, ratings, fill))
    return np.concatenate(out)


def _split(pr: Pairs, n: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Rounds whose comparison graph among their fitted models may fall apart: cheap to rule out when every pair
    with few battles in the data kept at least one (a pair of many battles never draws none)."""
    fragile = pr.n < 30
    if not fragile.any():
        return np.zeros(len(n), dtype=bool)
    return ((n[:, fragile] == 0) & fitted[:, pr.pa[fragile]] & fitted[:, pr.pb[fragile]]).any(axis=1)


def percentile_interval(boots: np.ndarray, level: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval per model (linear interpolation, as numpy's and FastChat's default).
    Rounds that separated a model count as ±inf, so an end that reaches into them is unbounded (±inf)."""
    tail = (100 - level) / 2
    return _percentile(boots, tail), _percentile(boots, 100 - tail)


def _percentile(boots: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear percentile over rounds, where an infinite neighbour of the interpolation makes the end
    infinite: the limit as a separated round's rating runs off. (numpy gives NaN there; clipping ±inf to a big
    number gave a huge finite end instead, e.g. -2.5e10 = 2.5% of -1e12 at 200 rounds.)"""
    big = np.finfo(float).max / 4
    finite = np.clip(boots, -big, big)
    below = np.nanpercentile(finite, q, axis=0, method="lower")    # x[floor(p)]: weight 1 - frac > 0
    above = np.nanpercentile(finite, q, axis=0, method="higher")   # x[ceil(p)]: weight frac (or the same row)
    value = np.nanpercentile(finite, q, axis=0)
    return np.where(below <= -big, -np.inf, np.where(above >= big, np.inf, value))


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
    pr = Pairs.of(agg)
    theta = fit_theta(pr, pr.n, pr.w, split.rated[None, :])[0][0]
    hess = None
    if split.rated.all():  # the Hessian at the optimum, for the bootstrap's chord iterations
        total = pr.n.sum()
        hess = _derivatives(pr, theta[None], pr.n[None] / total, pr.w[None] / total, split.rated[None],
                            split.rated[None] / m)[1][0]
    point = _anchor(agg.models, to_elo(theta, scale, base), anchor, base)
    low = high = point
    best = worst = None
    if bootstrap_rounds > 0:
        boots = bootstrap(agg, bootstrap_rounds, seed, split.rated, scale, base, anchor, pr, start=theta, hess=hess)
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

