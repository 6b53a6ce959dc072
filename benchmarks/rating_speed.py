"""Bradley–Terry bootstrap speed and memory, as ratios measured in one run.

Ours: battles aggregated into (pair, outcome) rows; bootstrap rounds drawn as multinomial counts over the rows
and fitted a batch at a time by a batched Newton method (the exact unpenalised MLE). Reference: a FastChat-style
fit (aggregated rows, scipy L-BFGS per bootstrap round on the unpenalised likelihood), on the same battles.
Both report their ratings; the largest point-estimate difference is printed beside the times.

    .venv/bin/python benchmarks/rating_speed.py                       # the two sizes of the issue
    .venv/bin/python benchmarks/rating_speed.py --battles 100000 --models 100 --rounds 1000
    .venv/bin/python benchmarks/rating_speed.py --memory --battles 1000000 --models 1000 --rounds 10
"""
from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np
from scipy.optimize import minimize

from arena_ray.rating.bradley_terry import Aggregated, aggregate_indices, fit_aggregated


def synthetic(n_battles: int, n_models: int, seed: int = 0) -> Aggregated:
    """Battles among models with normal(0, 150) strengths, 10% ties, as index arrays (no Python objects)."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 150, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    p = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    y = np.where(rng.random(n_battles) < 0.1, 0.5, (rng.random(n_battles) < p).astype(float))
    return aggregate_indices([f"m{i:04d}" for i in range(n_models)], a, b, y)


def lbfgs_fit(agg: Aggregated, w: np.ndarray) -> np.ndarray:
    m = len(agg.models)

    def nll(theta):
        d = theta[agg.idx_a] - theta[agg.idx_b]
        p = 1 / (1 + np.exp(-d))
        g = w * (p - agg.outcome)
        return np.sum(w * (np.logaddexp(0, d) - agg.outcome * d)), np.bincount(agg.idx_a, g, m) - \
            np.bincount(agg.idx_b, g, m)

    theta = minimize(nll, np.zeros(m), jac=True, method="L-BFGS-B", options={"gtol": 1e-8, "maxiter": 1000}).x
    return 1000 + 400 * (theta - theta.mean()) / math.log(10)


def reference(agg: Aggregated, rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """FastChat-style: the point fit, then per round resample the battles and refit with L-BFGS."""
    point = lbfgs_fit(agg, agg.count)
    rng = np.random.default_rng(seed)
    total = int(agg.count.sum())
    boots = np.array([lbfgs_fit(agg, rng.multinomial(total, agg.count / total).astype(float))
                      for _ in range(rounds)])
    return point, boots


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare(battles: int, models: int, rounds: int) -> float:
    agg = synthetic(battles, models)
    start = time.perf_counter()
    ours = fit_aggregated(agg, bootstrap_rounds=rounds, seed=1)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    point, boots = reference(agg, rounds, seed=2)
    ref_s = time.perf_counter() - start
    by_name = {r.model: r for r in ours}
    diff = max(abs(by_name[m].rating - point[i]) for i, m in enumerate(agg.models))
    width_ours = np.mean([r.ci_high - r.ci_low for r in ours])
    width_ref = np.mean(np.percentile(boots, 97.5, axis=0) - np.percentile(boots, 2.5, axis=0))
    print(f"{battles:>9,} battles × {models} models × {rounds} rounds: ours {ours_s:7.2f} s, FastChat-style "
          f"L-BFGS {ref_s:7.2f} s → {ref_s / ours_s:5.1f}× faster; ratings differ by ≤ {diff:.3f} points; mean CI "
          f"width {width_ours:.1f} vs {width_ref:.1f}")
    return ref_s / ours_s


def memory(battles: int, models: int, rounds: int) -> None:
    before = peak_mb()
    agg = synthetic(battles, models)
    start = time.perf_counter()
    fit_aggregated(agg, bootstrap_rounds=rounds, seed=1)
    print(f"{battles:,} battles × {models} models × {rounds} rounds: {time.perf_counter() - start:.1f} s, peak "
          f"memory {peak_mb():.0f} MB (process; {before:.0f} MB before the data)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--memory", action="store_true", help="peak memory of our fit alone")
    args = parser.parse_args()
    if args.memory:
        memory(args.battles or 1_000_000, args.models, args.rounds or 10)
        return
    if args.battles:
        ratios = [compare(args.battles, args.models, args.rounds or 100)]
    else:
        ratios = [compare(100_000, 100, 1000), compare(1_000_000, 100, 100)]
    print(f"ratio={min(ratios):.2f}")


if __name__ == "__main__":
    main()
