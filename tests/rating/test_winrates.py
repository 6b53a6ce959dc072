"""Win rates (issue 19): head-to-head with a bootstrap interval, AlpacaEval 2.0's length-controlled win rate checked
against alpaca_eval 0.6.6's own code (from the wheel scripts/setup.sh downloads) on real judged answers, and the
length-hacking guard on a policy that only pads its answers."""
from __future__ import annotations

import importlib
import math
import re
import sys
import types
import warnings
import zipfile
import zlib

import numpy as np
import pytest

from arena_ray.data.answers import load_answers
from arena_ray.data.battles import BattleRow, import_vicuna_reviews, read_jsonl
from arena_ray.errors import InputError
from arena_ray.rating.matrix import win_rate
from arena_ray.rating.winrates import (
    Comparison,
    comparisons_from_battles,
    head_to_head,
    length_controlled_win_rate,
    length_hacking,
)
from tests.conftest import ROOT, SHARED_DATA

WHEELS = ROOT / ".cache" / "wheels"
VICUNA = SHARED_DATA / "battles" / "vicuna_bench_2023_reviews" / "vicuna-13b_20230322-clean-lang"
VICUNA_ANSWERS = SHARED_DATA / "answers" / "vicuna_bench_2023"
ARENA_HARD = SHARED_DATA / "answers" / "arena_hard_v0.1"
VICUNA_13B = "vicuna-13b-20230322-clean-lang"


# --- head to head -------------------------------------------------------------------------------------------------

def _battle(a: str, b: str, winner: str, qid: str = "q", text_a=None, text_b=None) -> BattleRow:
    return BattleRow(a, b, winner, qid, text_a, text_b)


def test_head_to_head_counts_either_side_and_ties():
    battles = [_battle("m", "base", "model_a"), _battle("base", "m", "model_a"), _battle("base", "m", "model_b"),
               _battle("m", "base", "tie"), _battle("base", "m", "tie (bothbad)"), _battle("m", "other", "model_a")]
    out = head_to_head(battles, "m", "base", rounds=200)
    assert {k: out[k] for k in ("wins", "ties", "losses", "battles")} == {"wins": 2, "ties": 2, "losses": 1,
                                                                         "battles": 5}
    assert out["win_rate"] == 0.6 and out["ci"][0] <= 0.6 <= out["ci"][1]
    assert out == head_to_head(battles, "m", "base", rounds=200)  # the seed makes it repeatable
    assert head_to_head(battles, "m", "ghost") == {"wins": 0, "ties": 0, "losses": 0, "battles": 0,
                                                   "win_rate": None, "ci": None}


def test_head_to_head_on_real_battles_agrees_with_the_matrix():
    battles = read_jsonl(SHARED_DATA / "battles" / "arena_hard_battles.jsonl").battles
    a, b = battles[0].model_a, battles[0].model_b
    out = head_to_head(battles, b, a)
    expected, games = win_rate(battles, b, a)
    assert out["battles"] == games and out["win_rate"] == round(expected, 4)
    lo, hi = out["ci"]
    assert lo < out["win_rate"] < hi and hi - lo < 0.5  # a real interval, not a degenerate one


# --- length-controlled win rate against alpaca_eval's own code ----------------------------------------------------

def _patsy_stub() -> types.ModuleType:
    """patsy, which this venv lacks, for the formulas of alpaca_eval's GLMs: each `+` term a numpy expression over
    the frame's columns (np in scope), `- 1` no intercept — what patsy does for numeric terms, in formula order."""
    import pandas as pd

    class Matrix(pd.DataFrame):
        _metadata = ["design_info"]

        @property
        def _constructor(self):
            return Matrix

    def evaluate(terms, data):
        columns = {c: data[c] for c in data.columns}
        matrix = Matrix({t: np.asarray(eval(t, {"np": np}, columns), dtype=float) * np.ones(len(data))
                         for t in terms}, index=data.index)
        assert not matrix.isna().any().any()  # patsy would drop such rows: none in these fixtures
        matrix.design_info = terms
        return matrix

    def dmatrix(formula, data, return_type="dataframe"):
        assert formula.endswith(" - 1") and return_type == "dataframe"
        return evaluate([t.strip() for t in formula[:-len(" - 1")].split("+")], data)

    module = types.ModuleType("patsy")
    module.dmatrix = dmatrix
    module.build_design_matrices = lambda infos, data, return_type="dataframe": [evaluate(i, data) for i in infos]
    return module


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    """alpaca_eval.metrics.glm_winrate from the wheel, under a bare package (its __init__ pulls its CLI). patsy,
    which this venv lacks, is the stub above unless installed; `datasets`, which it imports only to load data sets
    and name a type, a bare module unless already imported (it takes a second to import)."""
    wheels = sorted(WHEELS.glob("alpaca_eval-0.6.6-*.whl"))
    assert wheels, f"AlpacaEval 0.6.6's wheel is missing from {WHEELS}: run scripts/setup.sh"
    root = tmp_path_factory.mktemp("alpaca_eval")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(root, [n for n in wheel.namelist() if re.fullmatch(r"alpaca_eval/(metrics/)?\w+\.py", n)])
    swapped = lambda k: k in ("alpaca_eval", "patsy", "datasets") or k.startswith("alpaca_eval.")  # noqa: E731
    saved = {k: v for k, v in sys.modules.items() if swapped(k)}
    package = types.ModuleType("alpaca_eval")
    package.__path__ = [str(root / "alpaca_eval")]
    sys.modules["alpaca_eval"] = package
    try:
        import patsy  # noqa: F401
    except ImportError:
        sys.modules["patsy"] = _patsy_stub()
    if "datasets" not in sys.modules:
        sys.modules["datasets"] = types.SimpleNamespace(Dataset=type("Dataset", (), {}))
    try:
        yield importlib.import_module("alpaca_eval.metrics.glm_winrate")
    finally:
        for k in [k for k in sys.modules if swapped(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def package_lc(glm, monkeypatch, tmp_path, rows, glm_name="length_controlled_minimal", difficulty=None) -> dict:
    """alpaca_eval's get_length_controlled_winrate on annotations built from `rows` (instruction_id, model text,
    reference text, preference): output_1 is the reference, output_2 the model, `index` the instruction's
    position. The df_gamed.csv it downloads every call is replaced by the instructions' difficulty (0 unless
    given; the minimal GLM does not use it)."""
    import pandas as pd
    import sklearn

    ids = [r[0] for r in rows]
    gamed = pd.DataFrame({"model": "none", "index": range(len(ids)),
                          "instruction_difficulty": [(difficulty or {}).get(i, 0.0) for i in ids]})
    gamed.to_csv(tmp_path / "df_gamed.csv", index=False)
    monkeypatch.setattr(glm, "hf_hub_download", lambda **kwargs: str(tmp_path / "df_gamed.csv"))
    annotations = pd.DataFrame({"index": range(len(ids)), "output_1": [r[2] for r in rows],
                                "output_2": [r[1] for r in rows], "preference": [r[3] for r in rows],
                                "generator_1": "reference", "generator_2": "model", "annotator": "judge"})
    with sklearn.config_context(), warnings.catch_warnings():  # it sets metadata routing globally: undone on leaving
        warnings.simplefilter("ignore", FutureWarning)  # its penalty="l1", deprecated in scikit-learn 1.8
        metrics = glm.get_length_controlled_winrate(annotations, glm_name=glm_name, save_weights_dir=None)
    return {"win_rate": metrics["win_rate"] / 100, "lc_win_rate": metrics["length_controlled_winrate"] / 100,
            "n": metrics["n_total"]}


def ours(rows, difficulty=None) -> dict:
    return length_controlled_win_rate([Comparison(i, p, len(m), len(r)) for i, m, r, p in rows], difficulty)


def assert_same(mine: dict, theirs: dict):
    assert mine["n"] == theirs["n"]
    assert mine["win_rate"] == pytest.approx(theirs["win_rate"], abs=1e-9)
    assert mine["lc_win_rate"] == pytest.approx(theirs["lc_win_rate"], abs=1e-6)


@pytest.fixture(scope="module")
def vicuna_battles():
    """GPT-4's reviews of Vicuna-13B against GPT-3.5, Bard, Alpaca-13B and LLaMA-13B on Vicuna-bench's 80
    questions, with both answers' texts: real verdicts on real answers."""
    return import_vicuna_reviews(VICUNA, VICUNA_ANSWERS).battles


@pytest.mark.parametrize("baseline", ["gpt-3.5-turbo-20230327", "bard-20230327", "alpaca-13b-v1", "llama-13b-v1"])
def test_lc_win_rate_equals_alpaca_eval_on_real_reviews(glm, monkeypatch, tmp_path, vicuna_battles, baseline):
    battles = [b for b in vicuna_battles if {b.model_a, b.model_b} == {VICUNA_13B, baseline}]
    assert len(battles) == 80 and all(b.model_b == VICUNA_13B for b in battles)  # answer2 is Vicuna's
    preference = {"model_a": 1.0, "model_b": 2.0, "tie": 1.5}
    rows = [(b.question_id, b.text_b, b.text_a, preference[b.winner]) for b in battles]
    mine = length_controlled_win_rate(comparisons_from_battles(battles, VICUNA_13B, baseline))
    assert_same(mine, package_lc(glm, monkeypatch, tmp_path, rows))
    assert mine["mean_length"] == pytest.approx(np.mean([len(b.text_b) for b in battles]))
    assert mine["reference_mean_length"] == pytest.approx(np.mean([len(b.text_a) for b in battles]))


@pytest.fixture(scope="module")
def arena_hard_rows():
    """GPT-4-0314 (the model) against GPT-3.5-Turbo-0125 (the reference) on arena-hard's 500 prompts: real answers;
    the verdicts come from a length-biased rule, as no judge's verdicts on this pair are in ../shared/data: the
    longer answer is preferred with probability 0.8 (crc32 of the uid decides), written as that float."""
    model, reference = load_answers(ARENA_HARD / "gpt-4-0314.jsonl"), load_answers(ARENA_HARD / "gpt-3.5-turbo-0125.jsonl")
    rows = []
    for uid in sorted(model):
        longer_wins = zlib.crc32(uid.encode()) % 10 < 8
        model_longer = len(model[uid]) > len(reference[uid])
        rows.append((uid, model[uid], reference[uid], 1.8 if longer_wins == model_longer else 1.2))
    return rows


def test_lc_win_rate_equals_alpaca_eval_with_float_verdicts_and_removes_the_length_bias(glm, monkeypatch, tmp_path,
                                                                                       arena_hard_rows):
    mine = ours(arena_hard_rows)
    assert mine["n"] == 500
    assert_same(mine, package_lc(glm, monkeypatch, tmp_path, arena_hard_rows))
    # GPT-4-0314's answers are mostly the longer ones here, and the judge's only bias is length: LC is nearer 0.5
    assert mine["mean_length"] > mine["reference_mean_length"]
    assert abs(mine["lc_win_rate"] - 0.5) < abs(mine["win_rate"] - 0.5)


def test_lc_win_rate_with_instruction_difficulty_equals_alpaca_eval_noreg(glm, monkeypatch, tmp_path, vicuna_battles):
    """Given each instruction's difficulty, the package's `length_controlled_noreg` GLM (v1's formula)."""
    battles = [b for b in vicuna_battles if b.model_a == "gpt-3.5-turbo-20230327"]
    rows = [(b.question_id, b.text_b, b.text_a, {"model_a": 1.0, "model_b": 2.0, "tie": 1.5}[b.winner])
            for b in battles]
    difficulty = {b.question_id: math.sin(int(b.question_id)) for b in battles}  # any fixed numbers
    mine = ours(rows, difficulty)
    assert_same(mine, package_lc(glm, monkeypatch, tmp_path, rows, "length_controlled_noreg", difficulty))
    assert mine["lc_win_rate"] != ours(rows)["lc_win_rate"]  # the difficulty term takes part
    with pytest.raises(InputError, match="no instruction difficulty for 1 instructions"):
        ours(rows, {k: v for k, v in difficulty.items() if k != rows[0][0]})


def test_lc_win_rate_degenerate_inputs_give_defined_values():
    def comparisons(prefs, lengths=None):
        lengths = lengths or [100 + 37 * i for i in range(len(prefs))]
        return [Comparison(str(i), p, n, 100) for i, (p, n) in enumerate(zip(prefs, lengths))]

    assert length_controlled_win_rate([]) == {"win_rate": None, "lc_win_rate": None, "n": 0, "mean_length": None,
                                              "reference_mean_length": None}
    one = length_controlled_win_rate(comparisons([2.0]))
    assert one == {"win_rate": 1.0, "lc_win_rate": 1.0, "n": 1, "mean_length": 100.0, "reference_mean_length": 100.0}
    assert length_controlled_win_rate(comparisons([2.0, 1.0, 1.5, 2.0]))["lc_win_rate"] is None  # < 5: no 5 folds
    for same in (1.0, 1.5, 2.0, 0):  # identical verdicts (0: AlpacaEval's old tie): lc = raw
        out = length_controlled_win_rate(comparisons([same] * 12))
        assert out["lc_win_rate"] == out["win_rate"] == (0.5 if same == 0 else same - 1)
    flat = length_controlled_win_rate(comparisons([2.0, 1.0] * 6, [150] * 12))  # length delta the same everywhere
    assert flat["lc_win_rate"] == pytest.approx(0.5, abs=0.01)
    for out in (one, flat, length_controlled_win_rate(comparisons([2.0, 1.0, 1.0, 1.5, 1.0, 1.2]))):
        assert all(v is None or math.isfinite(v) for v in out.values())
    for bad in (0.5, 2.5, float("nan")):
        with pytest.raises(InputError, match="outside AlpacaEval's"):
            length_controlled_win_rate(comparisons([bad] * 6))


# --- the length-hacking guard -------------------------------------------------------------------------------------

def test_length_hacking_names_the_iterations_that_only_grew():
    rows = [{"version": "v0", "mean_length": 1000, "lc_win_rate": 0.40},
            {"version": "v1", "mean_length": 1300, "lc_win_rate": 0.45},   # longer and better: fine
            {"version": "v2", "mean_length": 1600, "lc_win_rate": 0.38},   # longer, not better
            {"version": "v3", "mean_length": 2000, "lc_win_rate": None}]   # longer, LC unknown: not a rise
    text = length_hacking(rows, max_growth=1.5)
    assert "v2: 1.60x (1600 chars), LC win rate 38.0%" in text and "v3: 2.00x (2000 chars), LC win rate n/a" in text
    assert "v1" not in text and "over v0 (1000 chars, LC win rate 40.0%)" in text
    assert length_hacking(rows[:2], max_growth=1.2) is None
    assert length_hacking(rows, max_growth=2.5) is None  # nobody grew that much
    assert length_hacking([], 1.5) is None and length_hacking(rows[:1], 1.5) is None
    assert length_hacking([{"version": "v0", "mean_length": 0, "lc_win_rate": None}] + rows[1:], 1.5) is None
    equal = [rows[0], {"version": "v1", "mean_length": 3000, "lc_win_rate": 0.40}]
    assert "v1: 3.00x" in length_hacking(equal, 1.5)  # equal is not a rise


PAD = " To sum up, and to restate the points above in other words once more for completeness."


def padded_policy(k: int, verdict) -> list[tuple]:
    """GPT-4-0314's first 100 arena-hard answers as the reference; the policy's answers are the same texts padded by
    k × (a per-prompt 40-200 characters). Rows as package_lc takes them; verdicts from `verdict(uid)`."""
    reference = dict(sorted(load_answers(ARENA_HARD / "gpt-4-0314.jsonl").items())[:100])
    return [(uid, text + (PAD * 20)[:k * (40 + zlib.crc32(uid.encode()) % 161)], text, verdict(uid))
            for uid, text in reference.items()]


def test_guard_fires_on_a_policy_that_only_pads_its_answers():
    """Flywheel iterations v0..v3 pad by k = 1, 2, 4, 8 and the judge's verdicts never change (a fixed rule on the
    uid), given as battles with both texts. Doubling k only rescales the length deltas, which the GLM
    standardises: the LC win rate stays put while the answers grow, and the guard names the iteration."""
    def iteration(version: str, k: int) -> dict:
        winners = ("model_a", "model_b", "tie")
        battles = [_battle(version, "reference", winners[_rule(uid)], uid, mine, ref)
                   for uid, mine, ref, _ in padded_policy(k, _rule)]
        return {"version": version, **length_controlled_win_rate(comparisons_from_battles(battles, version,
                                                                                           "reference"))}

    rows = [iteration(f"v{i}", k) for i, k in enumerate((1, 2, 4, 8))]
    assert len({r["win_rate"] for r in rows}) == 1 and len({r["lc_win_rate"] for r in rows}) == 1
    assert rows[-2]["mean_length"] < 1.3 * rows[0]["mean_length"] < rows[-1]["mean_length"]
    text = length_hacking(rows, max_growth=1.3)
    assert text and "v3: 1.42x" in text and "v2" not in text
    assert f"LC win rate {100 * rows[0]['lc_win_rate']:.1f}%" in text


def _rule(uid: str) -> int:
    return zlib.crc32(uid.encode()) % 3


def test_lc_win_rate_gives_length_all_the_credit_when_every_answer_is_longer(glm, monkeypatch, tmp_path):
    """A policy longer than the reference on every prompt: tanh of the standardised delta is then nearly constant
    (here -1 to -0.77), collinear with the model term, and the package's L1 fit puts the policy's whole advantage
    on length: LC 0.5 for a raw 0.61. Ours does the same, being the package's computation."""
    rows = padded_policy(1, lambda uid: (2.0, 1.0, 2.0)[_rule(uid)])
    mine = ours(rows)
    assert_same(mine, package_lc(glm, monkeypatch, tmp_path, rows))
    assert mine["win_rate"] == pytest.approx(0.61) and mine["lc_win_rate"] == pytest.approx(0.5)


def test_comparisons_from_battles_skip_battles_without_texts():
    battles = [_battle("m", "base", "model_a", "1", "long answer", "short"),
               _battle("base", "m", "model_a", "2", "ref", "mine!"), _battle("m", "base", "tie", "3"),
               _battle("m", "x", "model_a", "4", "a", "b")]
    assert comparisons_from_battles(battles, "m", "base") == [Comparison("1", 2.0, 11, 5), Comparison("2", 1.0, 5, 3)]
