"""Win rates that mean something (issue 19): a head-to-head win rate with a bootstrap interval, AlpacaEval 2.0's
length-controlled win rate, and a guard that names a flywheel iteration which only grew its answers.

Pure: numpy here, scikit-learn (the `cpu` extra) imported where the length-controlled fit needs it.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from arena_ray.errors import InputError
from arena_ray.rating.bradley_terry import OUTCOME


def _score(battle, model: str) -> float:
    """1 when `model` won the battle, 0.5 for a tie, 0 for a loss (either side a or b)."""
    y = OUTCOME[battle.winner]
    return y if battle.model_a == model else 1.0 - y


def head_to_head(battles: Sequence, model: str, baseline: str, rounds: int = 1000, seed: int = 0) -> dict:
    """`model`'s record against `baseline` over their battles (BattleRow: each the arena's verdict of both orders),
    win_rate = (wins + ties/2) / battles, and a percentile bootstrap 95% interval over battles, so that a flywheel
    iteration's gain can be told from noise. win_rate and ci are None when they never met."""
    scores = np.array([_score(b, model) for b in battles if {b.model_a, b.model_b} == {model, baseline}])
    n = len(scores)
    out = {"wins": int((scores == 1).sum()), "ties": int((scores == 0.5).sum()), "losses": int((scores == 0).sum()),
           "battles": n, "win_rate": None, "ci": None}
    if n:
        means = scores[np.random.default_rng(seed).integers(0, n, size=(rounds, n))].mean(axis=1)
        out["win_rate"] = round(float(scores.mean()), 4)
        out["ci"] = [round(float(q), 4) for q in np.percentile(means, [2.5, 97.5])]
    return out


@dataclass(frozen=True)
class Comparison:
    """One instruction's verdict on the model's answer against the reference's, in AlpacaEval's convention:
    preference 1 = reference preferred, 2 = model preferred, 1.5 (or 0) a tie, or a float in [1, 2] (a judge's
    probability + 1). Lengths in characters, as AlpacaEval takes `len` of the output strings."""
    instruction_id: str
    preference: float
    length: int
    reference_length: int


def comparisons_from_battles(battles: Sequence, model: str, baseline: str) -> list[Comparison]:
    """The battles of `model` against `baseline` that carry both answers' texts, as Comparisons."""
    out = []
    for b in battles:
        if {b.model_a, b.model_b} != {model, baseline} or b.text_a is None or b.text_b is None:
            continue
        mine, ref = (b.text_a, b.text_b) if b.model_a == model else (b.text_b, b.text_a)
        out.append(Comparison(b.question_id, 1.0 + _score(b, model), len(mine), len(ref)))
    return out


N_SPLITS = 5  # AlpacaEval's GLM_INFO[...]["kwargs"]


def length_controlled_win_rate(comparisons: Sequence[Comparison],
                               difficulty: Optional[Mapping[str, float]] = None) -> dict:
    """AlpacaEval 2.0's length-controlled win rate (Dubois et al. 2024), as a fraction in [0, 1]: a logistic GLM
    predicts the verdict from tanh of the standardised length difference (reference minus model) and a model term;
    the LC win rate is its prediction with the length difference set to 0, averaged over the instructions.

    Mirrors alpaca_eval 0.6.6 `metrics.glm_winrate.get_length_controlled_winrate` for one model against one
    reference: the fit (`fit_LogisticRegressionCV`: verdicts as probabilities by duplicating each row with labels
    1 and 0 weighted p and 1-p, L1, liblinear, random_state 123, no intercept, 5-fold GroupKFold keeping a row and
    its duplicate together, scored by its continuous log loss) and the features (`_get_featurized_data`). Its default GLM, `length_controlled_v1`,
    needs data that exist only for AlpacaEval's own 805 instructions, downloaded by the package on every call
    (`df_gamed.csv`): a per-instruction difficulty, fitted once across its leaderboard, and the annotations of two
    deliberately verbose/concise baselines the fit is regularised towards (lambda 0.2). Our instructions have
    neither, so the path mirrored is the package's `length_controlled_minimal` GLM (`np.tanh(std_delta_len) +
    not_gamed_baseline - 1`, no regularisation) — or, when `difficulty` gives every instruction's difficulty,
    `length_controlled_noreg` (the v1 formula without the gamed-baseline regularisation).

    Defined where the package fails or has nothing to fit: no comparisons gives None rates; fewer than 5 (its
    5-fold split needs 5) gives lc_win_rate None; identical verdicts give lc = the raw rate (nothing left for
    length to explain; the package returns 0.5 when the reference always wins); equal length differences
    everywhere (std 0) make the length feature 0. Where the model is longer on every instruction the length feature
    is nearly constant, as the model term is, and the L1 fit may give length the whole difference (LC near 0.5):
    the package does the same (tests/rating/test_winrates.py shows it)."""
    n = len(comparisons)
    out = {"win_rate": None, "lc_win_rate": None, "n": n, "mean_length": None, "reference_mean_length": None}
    if not n:
        return out
    p = np.array([_fraction(c.preference) for c in comparisons])
    out.update(win_rate=float(p.mean()), mean_length=float(np.mean([c.length for c in comparisons])),
               reference_mean_length=float(np.mean([c.reference_length for c in comparisons])))
    if np.all(p == p[0]):
        out["lc_win_rate"] = out["win_rate"]
    elif n >= N_SPLITS:
        out["lc_win_rate"] = _glm_win_rate(_features(comparisons, difficulty), p)
    return out


def _fraction(preference: float) -> float:
    """AlpacaEval's preference (0 an old-style tie) as the model's share in [0, 1]."""
    pref = 1.5 if preference == 0 else float(preference)
    if not 1.0 <= pref <= 2.0:  # NaN fails too
        raise InputError(f"preference {preference!r} is outside AlpacaEval's [1, 2] (1 reference, 2 model)")
    return pref - 1.0


def _features(comparisons: Sequence[Comparison], difficulty: Optional[Mapping[str, float]]) -> np.ndarray:
    """The design matrix in patsy's column order: tanh(std_delta_len), [instruction_difficulty], model term."""
    delta = np.array([c.reference_length - c.length for c in comparisons], dtype=float)
    std = delta.std(ddof=1)  # pandas' Series.std, as the package uses
    columns = [np.tanh(delta / std) if std > 0 else np.zeros_like(delta)]
    if difficulty is not None:
        missing = [c.instruction_id for c in comparisons if c.instruction_id not in difficulty]
        if missing:
            raise InputError(f"no instruction difficulty for {len(missing)} instructions, e.g. {missing[0]!r}")
        columns.append(np.array([difficulty[c.instruction_id] for c in comparisons], dtype=float))
    columns.append(np.ones_like(delta))  # `not_gamed_baseline.astype(float)`: always 1 for the model's rows
    return np.column_stack(columns)


def _continuous_log_loss(y_true, y_pred, true_prob):
    """alpaca_eval's `logloss_continuous`: sklearn's labels back to the verdict probabilities they stand for."""
    target = np.where(y_true == 1, true_prob, 1 - true_prob)
    y_pred = np.clip(y_pred, 1e-15, 1 - 1e-15)
    return -np.mean(target * np.log(y_pred) + (1 - target) * np.log(1 - y_pred))


def _glm_win_rate(x: np.ndarray, p: np.ndarray) -> Optional[float]:
    """alpaca_eval's `fit_LogisticRegressionCV(is_ytrue_proba=True)`, then the prediction at length delta 0."""
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    n = len(p)
    x_dup, y_dup = np.vstack([x, x]), np.r_[np.ones(n), np.zeros(n)]
    true_prob, groups = np.r_[p, 1 - p], np.r_[np.arange(n), np.arange(n)]
    scorer = make_scorer(_continuous_log_loss, response_method="predict_proba", greater_is_better=False)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9's notice of LogisticRegressionCV's new attributes
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=N_SPLITS), scoring=scorer.set_score_request(true_prob=True),
                                     random_state=123, dual=False, solver="liblinear", fit_intercept=False,
                                     **_l1_penalty(sklearn.__version__))
        model.set_fit_request(sample_weight=True)
        model.fit(x_dup, y_dup, sample_weight=true_prob, groups=groups, true_prob=true_prob)
    x_test = x.copy()
    x_test[:, 0] = 0.0  # tanh(0): no length difference
    lc = float(model.predict_proba(x_test)[:, 1].mean())
    return lc if math.isfinite(lc) else None


def _l1_penalty(version: str) -> dict:
    """The package's `penalty="l1"`, spelt `l1_ratios=(1,)` from scikit-learn 1.8 on (penalty is deprecated)."""
    major, minor = (int(part) for part in re.match(r"(\d+)\.(\d+)", version).groups())
    return {"l1_ratios": (1.0,)} if (major, minor) >= (1, 8) else {"penalty": "l1"}


def length_hacking(rows: Sequence[Mapping], max_growth: float) -> Optional[str]:
    """A warning when an iteration's answers grew by more than `max_growth` times the first iteration's mean length
    while its LC win rate did not rise above the first's (None counts as not rising): the flywheel then taught
    the model to talk longer, not better. rows: per iteration, first = the starting model, with "version",
    "mean_length" and "lc_win_rate". None when no iteration did that."""
    if not rows:
        return None
    first = rows[0]
    base_len, base_lc = first.get("mean_length"), first.get("lc_win_rate")
    if not base_len:
        return None
    hacked = [r for r in rows[1:] if r.get("mean_length") is not None and r["mean_length"] > max_growth * base_len
              and not (r.get("lc_win_rate") is not None and base_lc is not None and r["lc_win_rate"] > base_lc)]
    if not hacked:
        return None
    said = "; ".join(f"{r['version']}: {r['mean_length'] / base_len:.2f}x ({r['mean_length']:.0f} chars), "
                     f"LC win rate {_pct(r.get('lc_win_rate'))}" for r in hacked)
    return (f"length hacking? answers grew more than {max_growth:g}x over {first['version']} "
            f"({base_len:.0f} chars, LC win rate {_pct(base_lc)}) without a higher LC win rate — {said}")


def _pct(rate: Optional[float]) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f}%"


def head_to_head_text(h2h: Optional[Mapping]) -> str:
    """`0.75 (0.50–1.00) 1/1/0` — win rate, 95% interval, wins/ties/losses — for a `head_to_head` result; – when
    the two never met."""
    if not h2h or h2h.get("win_rate") is None:
        return "–"
    lo, hi = h2h["ci"]
    return f"{h2h['win_rate']:.2f} ({lo:.2f}–{hi:.2f}) {h2h['wins']}/{h2h['ties']}/{h2h['losses']}"
