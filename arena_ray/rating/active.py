"""Which battles to fight next so that the ranking becomes certain with the fewest judge calls. Pure numpy.

The state is the sufficient statistics per unordered pair (battles, first model's win share). Each strategy
proposes the next pairs to battle:
- `uniform`: every pair equally often (all-pairs round robin), the baseline.
- `chiang`: Chatbot Arena's active sampling (Chiang et al. 2024, Eq. 9): pair a drawn with probability
  proportional to how much one more sample shrinks its interval, sqrt(S_a / n_a) - sqrt(S_a / (n_a + 1)), with S_a
  the per-sample variance of the pair's rating difference under the current Bradley–Terry fit.
- `focus` (ours): only pairs that still matter — their 95% intervals overlap and their gap may still be 25 points
  or more (`resolution`) — are sampled; among them, a battle is worth what it shrinks the two intervals: the
  Fisher information it adds times d(se)/d(information) = se^3 / 2 for each model. Models adjacent in the
  ranking battle each other, where a battle carries the most information.

Intervals here are Wald intervals from the Fisher information at the maximum-likelihood fit (the benchmark and
the arena's stopping rule re-fit after every batch; bootstrap intervals agree on real data, see the tests).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

Z95 = 1.959963984540054
POINTS = 400 / math.log(10)   # rating points per unit of log-strength


@dataclass
class PairState:
    """Battles so far per unordered pair (i < j): counts and i's win share (wins + ties / 2)."""

    m: int
    pa: np.ndarray = field(init=False)
    pb: np.ndarray = field(init=False)
    n: np.ndarray = field(init=False)
    w: np.ndarray = field(init=False)

    def __post_init__(self):
        self.pa, self.pb = (x.astype(np.int64) for x in np.triu_indices(self.m, 1))
        self.n = np.zeros(len(self.pa))
        self.w = np.zeros(len(self.pa))

    def index(self, i: int, j: int) -> int:
        """The column of the pair {i, j}."""
        i, j = min(i, j), max(i, j)
        return i * self.m - i * (i + 1) // 2 + (j - i - 1)

    def add(self, pair: np.ndarray, share_of_pa: np.ndarray) -> None:
        np.add.at(self.n, pair, 1.0)
        np.add.at(self.w, pair, share_of_pa)


@dataclass(frozen=True)
class Estimate:
    rating: np.ndarray   # points, centred on 0
    se: np.ndarray       # standard error of each rating (points)
    cov: np.ndarray      # covariance of the log-strengths (centred)

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rating - Z95 * self.se, self.rating + Z95 * self.se


def estimate(state: PairState, iterations: int = 50, prior: float = 1.0) -> Estimate:
    """The Bradley–Terry fit with its Fisher covariance, for choosing battles (the board itself is the exact,
    unpenalised fit). One pseudo-battle, a tie, on every pair played keeps a model that has won everything so
    far at a finite rating with a finite interval — without it, it would look infinitely uncertain and never
    settle — and it fades next to the data."""
    m = state.m
    played = state.n > 0
    n = state.n + prior * played
    w = state.w + 0.5 * prior * played
    theta = np.zeros(m)
    for _ in range(iterations):
        p = expit(theta[state.pa] - theta[state.pb])
        grad = np.bincount(state.pa, n * p - w, m) - np.bincount(state.pb, n * p - w, m)
        hess = _laplacian(state, n * p * (1 - p))
        step = np.linalg.solve(hess + np.ones((m, m)) / m, grad)
        theta -= step
        theta -= theta.mean()
        if np.abs(step).max() < 1e-8:
            break
    p = expit(theta[state.pa] - theta[state.pb])
    # The covariance of centred strengths: the Laplacian's pseudo-inverse, (L + 11'/m)^-1 - 11'/m (exact for a
    # connected comparison graph, and stable where pinv's cut-off is not).
    ones = np.ones((m, m)) / m
    cov = np.linalg.inv(_laplacian(state, n * p * (1 - p)) + ones) - ones
    return Estimate(theta * POINTS, np.sqrt(np.clip(np.diag(cov), 0, None)) * POINTS, cov)


def _laplacian(state: PairState, s: np.ndarray) -> np.ndarray:
    h = np.zeros((state.m, state.m))
    h[state.pa, state.pb] = -s
    h[state.pb, state.pa] = -s
    h[np.arange(state.m), np.arange(state.m)] = np.bincount(state.pa, s, state.m) + np.bincount(state.pb, s, state.m)
    return h


def settled(est: Estimate, state: PairState, resolution: float) -> np.ndarray:
    """Pairs whose order is certain (intervals apart) or that are certainly closer than `resolution` points."""
    low, high = est.intervals()
    apart = (low[state.pa] > high[state.pb]) | (low[state.pb] > high[state.pa])
    var_diff = est.cov[state.pa, state.pa] + est.cov[state.pb, state.pb] - 2 * est.cov[state.pa, state.pb]
    gap = np.abs(est.rating[state.pa] - est.rating[state.pb])
    close = gap + Z95 * np.sqrt(np.clip(var_diff, 0, None)) * POINTS < resolution
    return apart | close


def uniform(state: PairState, k: int, rng: np.random.Generator) -> np.ndarray:
    """The k least-battled pairs (ties broken at random): every pair equally often."""
    order = np.lexsort((rng.random(len(state.n)), state.n))
    return np.resize(order, k) if k > len(order) else order[:k]


def chiang(state: PairState, k: int, rng: np.random.Generator, est: Estimate) -> np.ndarray:
    """Chiang et al. (2024), Eq. 9: P(pair a) ∝ sqrt(S_a / n_a) - sqrt(S_a / (n_a + 1))."""
    var_diff = est.cov[state.pa, state.pa] + est.cov[state.pb, state.pb] - 2 * est.cov[state.pa, state.pb]
    n = np.maximum(state.n, 1.0)
    per_sample = np.clip(var_diff, 1e-12, None) * n
    gain = np.sqrt(per_sample / n) - np.sqrt(per_sample / (n + 1))
    return rng.choice(len(gain), size=k, p=gain / gain.sum())


def targets(state: PairState, est: Estimate, resolution: float) -> np.ndarray:
    """The standard error each model needs (points): its pairs that are not yet apart and may be `resolution`
    or more apart must fit both intervals into their gap, half each; a pair whose gap is not yet known to be
    under the resolution counts at the resolution."""
    low, high = est.intervals()
    gap = np.abs(est.rating[state.pa] - est.rating[state.pb])
    var_diff = est.cov[state.pa, state.pa] + est.cov[state.pb, state.pb] - 2 * est.cov[state.pa, state.pb]
    apart = (low[state.pa] > high[state.pb]) | (low[state.pb] > high[state.pa])
    # a pair matters while it is at all likely (10%) to be `resolution` apart
    may_matter = gap + 1.2816 * np.sqrt(np.clip(var_diff, 0, None)) * POINTS >= resolution
    # Both intervals must fit into the gap even where the estimated gap comes out ~2 standard errors short of
    # the true one (the last pairs to separate are the unlucky ones): se <= gap / (2 z + 2 sqrt 2).
    bound = np.where(may_matter & ~apart, np.maximum(gap, resolution) / (2 * Z95 + 2 * math.sqrt(2)), np.inf)
    target = np.full(state.m, np.inf)
    np.minimum.at(target, state.pa, bound)
    np.minimum.at(target, state.pb, bound)
    return target


def focus(state: PairState, k: int, rng: np.random.Generator, est: Estimate, resolution: float = 25.0) -> np.ndarray:
    """Ours: precision where the ranking still needs it. Each model's need is its variance over the variance its
    open pairs call for (`targets`): (se / target)^2; a model whose pairs are all apart needs nothing more. A
    battle between i and j is worth the information it adds to each, p(1-p), times both needs, so the models
    that hold the ranking back battle each other (close in rating, where a battle tells the most), and models
    whose neighbours are already far apart stop taking judge calls."""
    need = (est.se / targets(state, est, resolution)) ** 2
    if not need.any():
        return uniform(state, k, rng)
    p = expit((est.rating[state.pa] - est.rating[state.pb]) / POINTS)
    worth = p * (1 - p) * need[state.pa] * need[state.pb]
    if not worth.any():
        worth = p * (1 - p) * (need[state.pa] + need[state.pb])
    return rng.choice(len(worth), size=k, p=worth / worth.sum())


STRATEGIES = ("uniform", "chiang", "focus")


def propose(strategy: str, state: PairState, k: int, rng: np.random.Generator, resolution: float = 25.0) -> np.ndarray:
    """The next k pairs (column indices of `state`) to battle."""
    if strategy == "uniform" or state.n.sum() == 0:
        return uniform(state, k, rng)
    est = estimate(state)
    if strategy == "chiang":
        return chiang(state, k, rng, est)
    if strategy == "focus":
        return focus(state, k, rng, est, resolution)
    raise ValueError(f"unknown strategy '{strategy}' (known: {', '.join(STRATEGIES)})")
