"""Bradley–Terry: the exact unpenalised fit, separation, intervals and ranks — checked against independent fits
written differently (scipy on the per-battle likelihood; a FastChat-style bootstrap that resamples battles and
refits with L-BFGS) on the real battle files, not only on balanced synthetic data."""
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from arena_ray.data.battles import import_vicuna_reviews, read_battles
from arena_ray.errors import ConfigError, InputError
from arena_ray.rating.bradley_terry import Pairs, aggregate, aggregate_indices, describe_separation, fit, fit_theta
from tests.conftest import SHARED_DATA

BATTLES = SHARED_DATA / "battles"


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


def real_battles() -> dict[str, list[tuple[str, str, str]]]:
    out = {name: [b.triple() for b in read_battles(BATTLES / name).battles]
           for name in ("arena_hard_battles.jsonl", "chatbot_arena_sample.jsonl")}
    reviews = import_vicuna_reviews(BATTLES / "vicuna_bench_2023_reviews", SHARED_DATA / "answers" / "vicuna_bench_2023")
    out["vicuna_bench_2023_reviews"] = [b.triple() for b in reviews.battles]
    return out


Y = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def scipy_fit(battles, models) -> dict[str, float]:
    """The reference: per-battle logistic likelihood (no aggregation, no penalty), a tie half a win each way,
    scipy's BFGS with an analytic gradient; ratings centred on 1000."""
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[x] for x, _, _ in battles])
    b = np.array([index[y] for _, y, _ in battles])
    y = np.array([Y[w] for _, _, w in battles])

    def nll(beta):
        z = beta[a] - beta[b]
        p = 1 / (1 + np.exp(-z))
        g = np.zeros(len(models))
        np.add.at(g, a, p - y)
        np.add.at(g, b, y - p)
        return np.sum(np.logaddexp(0, z) - y * z), g

    beta = minimize(nll, np.zeros(len(models)), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000}).x
    elo = 400 * (beta - beta.mean()) / math.log(10) + 1000
    return dict(zip(models, elo))


def reference_bootstrap(battles, models, rounds: int, seed: int) -> np.ndarray:
    """FastChat / arena-hard style: resample the battles with replacement, aggregate, refit with L-BFGS."""
    rng = np.random.default_rng(seed)
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[x] for x, _, _ in battles])
    b = np.array([index[y] for _, y, _ in battles])
    y = np.array([Y[w] for _, _, w in battles])
    out = []
    for _ in range(rounds):
        pick = rng.integers(0, len(battles), len(battles))
        keys, w = np.unique(np.stack([a[pick], b[pick], y[pick] * 2]), axis=1, return_counts=True)
        ra, rb, ry = keys[0].astype(int), keys[1].astype(int), keys[2] / 2

        def nll(beta):
            z = beta[ra] - beta[rb]
            p = 1 / (1 + np.exp(-z))
            g = np.zeros(len(models))
            np.add.at(g, ra, w * (p - ry))
            np.add.at(g, rb, w * (ry - p))
            return np.sum(w * (np.logaddexp(0, z) - ry * z)), g

        beta = minimize(nll, np.zeros(len(models)), jac=True, method="L-BFGS-B", options={"gtol": 1e-9}).x
        out.append(400 * (beta - beta.mean()) / math.log(10) + 1000)
    return np.array(out)


@pytest.fixture(scope="module")
def real():
    return real_battles()


@pytest.mark.parametrize("name", ["arena_hard_battles.jsonl", "chatbot_arena_sample.jsonl",
                                  "vicuna_bench_2023_reviews"])
def test_equals_an_independent_unpenalised_fit_on_real_battles(real, name):
    ratings = fit(real[name], bootstrap_rounds=0)
    rated = sorted(r.model for r in ratings if not r.separated)
    among = [t for t in real[name] if t[0] in rated and t[1] in rated]
    reference = scipy_fit(among, rated)
    assert len(rated) >= 4
    for r in ratings:
        if not r.separated:
            assert r.rating == pytest.approx(reference[r.model], abs=1.0), r.model


def test_separated_models_never_lost_or_never_won_against_the_rated_block(real):
    ratings = fit(real["chatbot_arena_sample.jsonl"], bootstrap_rounds=0)
    rated = {r.model for r in ratings if not r.separated}
    separated = {r.model: r.separated for r in ratings if r.separated}
    assert separated and len(describe_separation(ratings)) == len(separated)
    for a, b, w in real["chatbot_arena_sample.jsonl"]:
        for me, other, my_share in ((a, b, Y[w]), (b, a, 1 - Y[w])):
            if other in rated and separated.get(me) == "above":
                assert my_share == 1.0, (me, other, w)   # never lost (nor tied) to a rated model
            if other in rated and separated.get(me) == "below":
                assert my_share == 0.0, (me, other, w)


def test_a_model_that_never_lost_is_reported_by_name_not_shrunk():
    battles = synthetic({"a": 1100, "b": 1000, "c": 900}, 200, seed=2)
    battles += [("champ", m, "model_a") for m in ("a", "b", "c") for _ in range(5)]
    ratings = fit(battles, bootstrap_rounds=50)
    assert ratings[0].model == "champ" and ratings[0].separated == "above" and ratings[0].rating is None
    assert ratings[0].rank_ub == 1 and all(r.rank_ub > 1 for r in ratings[1:])
    assert describe_separation(ratings) == ["champ never lost to the rated models: no finite rating exists; left out "
                                            "of the fit and placed above a, b, c"]
    # the others are rated exactly as without the champion: nothing was shrunk
    alone = {r.model: r.rating for r in fit(battles[:-15], bootstrap_rounds=0)}
    for r in ratings[1:]:
        assert r.rating == pytest.approx(alone[r.model], abs=1e-6)
    loser = fit(battles + [(m, "dud", "model_a") for m in "abc"], bootstrap_rounds=0)
    assert loser[-1].model == "dud" and loser[-1].separated == "below"


@pytest.mark.parametrize("name", ["arena_hard_battles.jsonl", "vicuna_bench_2023_reviews"])
def test_interval_widths_agree_with_a_resampling_bootstrap(real, name):
    battles = real[name]
    ours = {r.model: r for r in fit(battles, bootstrap_rounds=1000, seed=1)}
    models = sorted(ours)
    boots = reference_bootstrap(battles, models, 1000, seed=2)
    low, high = np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)
    for i, m in enumerate(models):
        assert (ours[m].ci_high - ours[m].ci_low) / (high[i] - low[i]) == pytest.approx(1.0, abs=0.2), m


def test_rank_ub_and_rank_intervals_follow_their_definitions(real):
    ratings = fit(real["vicuna_bench_2023_reviews"], bootstrap_rounds=300)
    for r in ratings:
        above = sum(1 for o in ratings if o.ci_low > r.ci_high)
        assert r.rank_ub == 1 + above
        assert r.rank_best <= r.rank_worst and r.rank_best >= r.rank_ub
    assert [r.rank_best for r in ratings][0] == 1


def test_recovers_known_ratings_and_handles_ties():
    truth = {"strong": 1200, "mid": 1000, "weak": 800}
    ratings = {r.model: r for r in fit(synthetic(truth, 2000), bootstrap_rounds=0)}
    for m in truth:
        assert ratings[m].rating == pytest.approx(truth[m], abs=15)
    r = fit([("a", "b", "model_a")] * 30 + [("a", "b", "model_b")] * 10, bootstrap_rounds=0)
    assert r[0].rating - r[1].rating == pytest.approx(400 * math.log10(3), abs=1e-6)  # exact, not shrunk
    only_ties = fit([("a", "b", "tie")] * 20 + [("b", "c", "tie (bothbad)")] * 20, bootstrap_rounds=0)
    assert all(abs(x.rating - 1000) < 1e-6 for x in only_ties)
    r = {x.model: x.rating for x in fit([("a", "b", "model_a")] * 10 + [("a", "b", "tie")] * 20, bootstrap_rounds=0)}
    assert r["a"] - r["b"] == pytest.approx(400 * math.log10(2), abs=1e-6)


def test_bootstrap_is_seeded_and_shrinks_with_data():
    truth = {"a": 1100, "b": 1000, "c": 900}
    small = {r.model: r for r in fit(synthetic(truth, 30), bootstrap_rounds=200, seed=1)}
    large = {r.model: r for r in fit(synthetic(truth, 600), bootstrap_rounds=200, seed=1)}
    for m in truth:
        assert small[m].ci_low <= small[m].rating <= small[m].ci_high
        assert (large[m].ci_high - large[m].ci_low) < (small[m].ci_high - small[m].ci_low) / 2
    again = {r.model: r for r in fit(synthetic(truth, 30), bootstrap_rounds=200, seed=1)}
    assert again["a"].ci_low == small["a"].ci_low


def test_batched_rounds_equal_single_fits():
    pairs = Pairs.of(aggregate(synthetic({"a": 1150, "b": 1000, "c": 980, "d": 700}, 40, seed=4, tie_rate=0.2)))
    n, w = pairs.resample(np.random.default_rng(0), 5)
    together, converged = fit_theta(pairs, n, w)
    assert converged.all()
    for k in range(5):
        assert np.allclose(together[k], fit_theta(pairs, n[k], w[k])[0][0], atol=1e-8)


def test_resampling_pairs_is_resampling_battles():
    """Drawing how many battles each pair gets, then how they split, has the law of drawing battles."""
    battles = synthetic({"a": 1150, "b": 1000, "c": 900}, 60, seed=6, tie_rate=0.25)
    pairs = Pairs.of(aggregate(battles))
    n, w = pairs.resample(np.random.default_rng(1), 20_000)
    rng = np.random.default_rng(2)
    index = {(min(a, b), max(a, b)): k for k, (a, b) in enumerate(zip(pairs.pa, pairs.pb))}
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    direct_n, direct_w = np.zeros((2000, len(index))), np.zeros((2000, len(index)))
    for r in range(2000):
        for k in rng.integers(0, len(battles), len(battles)):
            a, b, win = battles[k]
            i, j = models.index(a), models.index(b)
            col = index[(min(i, j), max(i, j))]
            direct_n[r, col] += 1
            direct_w[r, col] += Y[win] if i < j else 1 - Y[win]
    for ours, direct in ((n, direct_n), (w, direct_w)):
        assert np.allclose(ours.mean(axis=0), direct.mean(axis=0), rtol=0.03)
        assert np.allclose(ours.std(axis=0), direct.std(axis=0), rtol=0.1)


def test_arrays_aggregate_like_triples():
    triples = synthetic({"a": 1100, "b": 1000, "c": 900}, 50, seed=5, tie_rate=0.1)
    models = ("a", "b", "c")
    index = {m: i for i, m in enumerate(models)}
    arrays = aggregate_indices(models, np.array([index[a] for a, _, _ in triples]),
                               np.array([index[b] for _, b, _ in triples]), np.array([Y[w] for *_, w in triples]))
    rows = sorted(zip(arrays.idx_a, arrays.idx_b, arrays.outcome, arrays.count))
    agg = aggregate(triples)
    assert rows == sorted(zip(agg.idx_a, agg.idx_b, agg.outcome, agg.count))


def test_battle_counts_and_bad_input():
    r = {x.model: x for x in fit([("a", "b", "model_a"), ("a", "c", "tie"), ("b", "c", "model_b")],
                                 bootstrap_rounds=0)}
    assert (r["a"].battles, r["b"].battles, r["c"].battles) == (2, 2, 2)
    with pytest.raises(InputError, match="unknown winner label 'draw'"):
        fit([("a", "b", "draw")])
    with pytest.raises(InputError, match="battles itself"):
        fit([("a", "a", "tie")])
    with pytest.raises(InputError, match="no battles"):
        fit([])
    with pytest.raises(ConfigError, match="bootstrap rounds must be >= 0"):
        fit([("a", "b", "tie")], bootstrap_rounds=-5)


def test_aggregation_collapses_identical_outcomes():
    agg = aggregate([("a", "b", "model_a")] * 1000 + [("a", "b", "tie")] * 5)
    assert len(agg.count) == 2 and agg.count.sum() == 1005
