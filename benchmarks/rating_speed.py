"""Bradley–Terry bootstrap speed: ours (aggregated rows, batched Newton over all rounds) vs a straightforward
per-round fit (resample the battles, minimise the per-battle logistic likelihood with scipy L-BFGS), on the
same synthetic battles in the same run. Also checks both give the same CIs.

    .venv/bin/python benchmarks/rating_speed.py [--battles 100000] [--models 50] [--rounds 100]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.optimize import minimize

from arena_ray.rating.bradley_terry import OUTCOME, fit


def synthetic(n_battles: int, n_models: int, seed: int = 0) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 150, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    p = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    u = rng.random(n_battles)
    winner = np.where(u < 0.1, "tie", np.where(rng.random(n_battles) < p, "model_a", "model_b"))
    return [(f"m{x:03d}", f"m{y:03d}", w) for x, y, w in zip(a, b, winner)]


def baseline(battles, rounds: int, seed: int) -> np.ndarray:
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    idx = {m: i for i, m in enumerate(models)}
    a = np.array([idx[x] for x, _, _ in battles])
    b = np.array([idx[y] for _, y, _ in battles])
    y = np.array([OUTCOME[w] for _, _, w in battles])
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        pick = rng.integers(0, len(y), len(y))
        ra, rb, ry = a[pick], b[pick], y[pick]

        def nll(theta):
            d = theta[ra] - theta[rb]
            p = 1 / (1 + np.exp(-d))
            g = (p - ry) / len(ry)
            grad = np.bincount(ra, g, len(models)) - np.bincount(rb, g, len(models)) + 2e-4 * theta
            return (np.logaddexp(0, d) - ry * d).mean() + 1e-4 * theta @ theta, grad

        theta = minimize(nll, np.zeros(len(models)), jac=True, method="L-BFGS-B").x
        out.append(1000 + 400 * (theta - theta.mean()) / math.log(10))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    battles = synthetic(args.battles, args.models)

    start = time.perf_counter()
    ours = fit(battles, bootstrap_rounds=args.rounds, seed=1)
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    boots = baseline(battles, args.rounds, seed=1)
    base_s = time.perf_counter() - start

    width_ours = np.mean([r.ci_high - r.ci_low for r in ours])
    width_base = np.mean(np.percentile(boots, 97.5, axis=0) - np.percentile(boots, 2.5, axis=0))
    print(f"battles={args.battles} models={args.models} bootstrap rounds={args.rounds}")
    print(f"ours (aggregated, batched Newton) : {ours_s:8.2f} s")
    print(f"per-round scipy L-BFGS baseline   : {base_s:8.2f} s")
    print(f"speed-up                          : {base_s / ours_s:8.1f}x")
    print(f"mean 95% CI width: ours {width_ours:.1f}, baseline {width_base:.1f} (same resampling scheme)")


if __name__ == "__main__":
    main()
