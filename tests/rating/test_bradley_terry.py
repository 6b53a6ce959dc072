import math

import numpy as np
import pytest
from scipy.optimize import minimize

from arena_ray.rating.bradley_terry import aggregate, fit


def synthetic(strengths: dict, n_per_pair: int, seed: int = 0, tie_rate: float = 0.0):
    rng = np.random.default_rng(seed)
    names = list(strengths)
    battles = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            p = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
            for _ in range(n_per_pair):
                if rng.random() < tie_rate:
                    battles.append((a, b, "tie"))
                else:
                    battles.append((a, b, "model_a" if rng.random() < p else "model_b"))
    return battles


def test_recovers_known_ratings():
    truth = {"strong": 1200, "mid": 1000, "weak": 800}
    ratings = {r.model: r for r in fit(synthetic(truth, 2000), bootstrap_rounds=0)}
    centred = {m: v - np.mean(list(truth.values())) + 1000 for m, v in truth.items()}
    for m in truth:
        assert ratings[m].rating == pytest.approx(centred[m], abs=15)


def test_sign_direction_and_order():
    battles = [("a", "b", "model_a")] * 30 + [("a", "b", "model_b")] * 10
    r = fit(battles, bootstrap_rounds=0)
    assert [x.model for x in r] == ["a", "b"]
    # 3:1 odds on 400/log10 scale: difference = 400*log10(3)
    assert r[0].rating - r[1].rating == pytest.approx(400 * math.log10(3), abs=1.0)


def test_ties_count_half():
    only_ties = fit([("a", "b", "tie")] * 20 + [("b", "c", "tie (bothbad)")] * 20, bootstrap_rounds=0)
    assert all(abs(r.rating - 1000) < 1e-3 for r in only_ties)
    # 10 wins + 20 ties = 20 wins-equivalent of 30 → odds 2:1
    r = {x.model: x.rating for x in fit([("a", "b", "model_a")] * 10 + [("a", "b", "tie")] * 20, bootstrap_rounds=0)}
    assert r["a"] - r["b"] == pytest.approx(400 * math.log10(2), abs=1.0)


def test_matches_an_independent_logistic_fit():
    battles = synthetic({"a": 1100, "b": 1000, "c": 950, "d": 900}, 300, seed=3)
    ours = {r.model: r.rating for r in fit(battles, bootstrap_rounds=0)}
    names = sorted(ours)
    X = np.zeros((len(battles), len(names)))
    y = np.zeros(len(battles))
    for k, (a, b, w) in enumerate(battles):
        X[k, names.index(a)], X[k, names.index(b)] = 1, -1
        y[k] = w == "model_a"

    def nll(beta):  # plain per-battle logistic likelihood, no aggregation
        z = X @ beta
        return np.sum(np.logaddexp(0, z) - y * z)

    beta = minimize(nll, np.zeros(len(names)), method="BFGS").x
    elo = 400 * (beta - beta.mean()) / math.log(10) + 1000
    for i, m in enumerate(names):
        assert ours[m] == pytest.approx(elo[i], abs=0.5)


def test_bootstrap_ci_contains_estimate_and_shrinks_with_data():
    truth = {"a": 1100, "b": 1000, "c": 900}
    small = {r.model: r for r in fit(synthetic(truth, 30), bootstrap_rounds=200, seed=1)}
    large = {r.model: r for r in fit(synthetic(truth, 600), bootstrap_rounds=200, seed=1)}
    for m in truth:
        assert small[m].ci_low <= small[m].rating <= small[m].ci_high
        assert (large[m].ci_high - large[m].ci_low) < (small[m].ci_high - small[m].ci_low) / 2
    again = {r.model: r for r in fit(synthetic(truth, 30), bootstrap_rounds=200, seed=1)}
    assert again["a"].ci_low == small["a"].ci_low  # seeded


def test_battle_counts_and_bad_input():
    r = {x.model: x for x in fit([("a", "b", "model_a"), ("a", "c", "tie")], bootstrap_rounds=0)}
    assert (r["a"].battles, r["b"].battles, r["c"].battles) == (2, 1, 1)
    with pytest.raises(ValueError, match="unknown winner label 'draw'"):
        fit([("a", "b", "draw")])
    with pytest.raises(ValueError, match="battles itself"):
        fit([("a", "a", "tie")])
    with pytest.raises(ValueError, match="no battles"):
        fit([])


def test_aggregation_collapses_identical_outcomes():
    agg = aggregate([("a", "b", "model_a")] * 1000 + [("a", "b", "tie")] * 5)
    assert len(agg.count) == 2 and agg.count.sum() == 1005


def test_undefeated_model_gets_a_finite_rating():
    r = fit([("a", "b", "model_a")] * 10, bootstrap_rounds=20)
    assert all(np.isfinite([x.rating, x.ci_low, x.ci_high]).all() for x in r)
    assert r[0].model == "a"
