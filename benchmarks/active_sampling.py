"""How many judge calls each battle-selection strategy needs before the ranking is certain.

Judge verdicts are simulated from true ratings (Bradley–Terry probabilities; ties with probability
0.8·p·(1-p), taken from both sides equally, so a tie is still worth half and the expected score stays p). A
strategy is done when every pair of models whose true ratings differ by at least 25 points is ordered correctly
with non-overlapping 95% intervals (Wald intervals of the refitted Bradley–Terry model, checked after every
batch of 2% more battles). Every battle costs two judge calls (both orders). Strategies: uniform all-pairs,
Chatbot Arena's published rule (Chiang et al. 2024, Eq. 9) and ours (arena_ray.rating.active.focus). The median
over seeds derived from --seed; the last line is `ratio=R`, ours / uniform. Before it, the bound: what even an
allocation that knows the true ratings could save on this criterion.

    .venv/bin/python benchmarks/active_sampling.py --truth ../shared/data/leaderboards/lmarena_text_2025-08-06.csv
"""
from __future__ import annotations

import argparse
import csv
import time

import numpy as np
from scipy.optimize import minimize

from arena_ray.rating.active import Z95, PairState, estimate, propose

RESOLUTION = 25.0
TIE = 0.8


def load_truth(path: str, models: int) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [(r["model"], float(r["arena_score"])) for r in csv.DictReader(fh)]
    rows = sorted(dict(rows).items(), key=lambda kv: -kv[1])[:models]  # a repeated row counts once
    return [name for name, _ in rows], np.array([score for _, score in rows])


def simulate(state: PairState, pairs: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> None:
    """Verdicts for these pairs: pa's share of the win (1, 0.5 or 0)."""
    p = 1 / (1 + 10 ** ((truth[state.pb[pairs]] - truth[state.pa[pairs]]) / 400))
    tie = TIE * p * (1 - p)
    u = rng.random(len(pairs))
    share = np.where(u < p - tie / 2, 1.0, np.where(u < p + tie / 2, 0.5, 0.0))
    state.add(pairs, share)


def certain(state: PairState, truth: np.ndarray) -> bool:
    est = estimate(state)
    low, high = est.intervals()
    gap = truth[state.pa] - truth[state.pb]
    must = np.abs(gap) >= RESOLUTION
    first_above = low[state.pa] > high[state.pb]
    second_above = low[state.pb] > high[state.pa]
    return bool(np.all(np.where(gap > 0, first_above, second_above)[must]))


def calls_until_certain(strategy: str, truth: np.ndarray, seed: int, warmup: int = 2, cap: int = 2_000_000) -> int:
    rng = np.random.default_rng(seed)
    state = PairState(len(truth))
    for _ in range(warmup):   # every strategy starts from the same first look at every pair
        simulate(state, np.arange(len(state.n)), truth, rng)
    while not certain(state, truth):
        total = int(state.n.sum())
        if total > cap:
            raise RuntimeError(f"{strategy}: not certain after {cap} battles")
        batch = max(50, total // 50)
        simulate(state, propose(strategy, state, batch, rng, RESOLUTION), truth, rng)
    return 2 * int(state.n.sum())


def precision_bound(truth: np.ndarray) -> float:
    """What any strategy could save at best, with the true ratings known and no estimation noise: the cheapest
    standard errors that separate every pair at least RESOLUTION apart (se_i + se_j <= gap / z), against the
    one standard error uniform sampling gives everyone (RESOLUTION / 2z). A model's battles grow as 1 / se^2,
    so the ratio of judge calls is sum(1 / se_i^2) / (m / se_uniform^2)."""
    m = len(truth)
    i, j = np.triu_indices(m, 1)
    gap = np.abs(truth[i] - truth[j])
    must = gap >= RESOLUTION
    rows = np.zeros((must.sum(), m))
    rows[np.arange(must.sum()), i[must]] = rows[np.arange(must.sum()), j[must]] = 1
    limit = gap[must] / Z95
    uniform_se = RESOLUTION / (2 * Z95)
    best = minimize(lambda s: np.sum(s ** -2.0), np.full(m, uniform_se * 0.99), jac=lambda s: -2 * s ** -3.0,
                    constraints=[{"type": "ineq", "fun": lambda s: limit - rows @ s, "jac": lambda s: -rows}],
                    bounds=[(0.01, None)] * m, method="SLSQP")
    return float(np.sum(best.x ** -2.0) / (m / uniform_se ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth", default="../shared/data/leaderboards/lmarena_text_2025-08-06.csv")
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=9)
    parser.add_argument("--strategies", default="uniform,chiang,focus")
    args = parser.parse_args()
    names, truth = load_truth(args.truth, args.models)
    gaps = np.abs(truth[:, None] - truth[None, :])[np.triu_indices(len(truth), 1)]
    print(f"{len(names)} models ({names[0]} … {names[-1]}), ratings {truth.min():.0f}–{truth.max():.0f}; "
          f"{int((gaps >= RESOLUTION).sum())} of {len(gaps)} pairs at least {RESOLUTION:.0f} points apart")
    seeds = [args.seed * 1000 + k for k in range(args.seeds)]
    medians = {}
    for strategy in args.strategies.split(","):
        start = time.perf_counter()
        calls = [calls_until_certain(strategy, truth, s) for s in seeds]
        medians[strategy] = float(np.median(calls))
        print(f"{strategy:<8} judge calls until certain: median {medians[strategy]:>9,.0f}  "
              f"(seeds: {', '.join(f'{c:,}' for c in calls)}; {time.perf_counter() - start:.0f} s)")
    print(f"bound: with the true ratings known and no noise, the fewest judge calls any allocation of precision "
          f"needs is {precision_bound(truth):.2f}x uniform's on this criterion")
    if "uniform" in medians and "focus" in medians:
        print(f"ratio={medians['focus'] / medians['uniform']:.3f}")


if __name__ == "__main__":
    main()
