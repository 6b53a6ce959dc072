import pytest

from arena_ray.data.leaderboards import load_board, rename
from arena_ray.errors import InputError
from arena_ray.rating.consistency import compare
from arena_ray.records import BoardEntry as Entry
from tests.data.test_ingest import DATA, needs_data


def board(ratings, width=10):
    return {m: Entry(r, r - width, r + width) for m, r in ratings.items()}


def test_perfect_and_reversed_agreement():
    ref = board({"a": 1300, "b": 1200, "c": 1100, "d": 1000})
    same = compare(board({"a": 1250, "b": 1150, "c": 1050, "d": 990}), ref)
    assert same["spearman"] == same["kendall"] == same["agreement"] == pytest.approx(1.0)
    assert same["separability"] == 1.0 and same["arena_learning_consistency"] == pytest.approx(1.0)
    rev = compare(board({"a": 1000, "b": 1100, "c": 1200, "d": 1300}), ref)
    assert rev["spearman"] == pytest.approx(-1.0) and rev["agreement"] == pytest.approx(-1.0)
    assert rev["brier"] > same["brier"]


def test_overlapping_cis_give_no_agreement_credit():
    ref = board({"a": 1300, "b": 1200, "c": 1100})
    wide = compare(board({"a": 1030, "b": 1020, "c": 1010}, width=100), ref)
    assert wide["spearman"] == pytest.approx(1.0) and wide["agreement"] == 0.0 and wide["separability"] == 0.0


def test_unmatched_names_are_listed_not_guessed(tmp_path):
    ours = board({"GPT-4o": 1, "b": 2, "c": 3, "d": 4})
    ref = board({"gpt-4o": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    result = compare(ours, ref)
    assert result["unmatched_ours"] == ["GPT-4o"] and result["models"] == 3
    names = tmp_path / "names.json"
    names.write_text('{"GPT-4o": "gpt-4o"}')
    assert compare(rename(ours, names), ref)["models"] == 4
    with pytest.raises(InputError, match="at least 3 models"):
        compare(board({"x": 1, "y": 2}), ref)


@needs_data
def test_reference_csvs_load():
    lm = load_board(DATA / "leaderboards/lmarena_text_2025-08-06.csv")
    assert len(lm) == 265 and lm["Gemini-2.5-Pro"] == Entry(1470, 1465, 1475)  # 266 rows, one repeated
    ah = load_board(DATA / "leaderboards/arena_hard_v0.1_2024-07-31.csv")
    assert len(ah) == 60 and ah["claude-3-opus-20240229"].ci_low == pytest.approx(57.56)


def test_conflicting_duplicate_rows_are_refused(tmp_path):
    from arena_ray.errors import InputError
    f = tmp_path / "ref.csv"
    f.write_text("model,arena_score,95_pct_ci\nx,1200,+5/-5\nx,1100,+5/-5\ny,1000,+5/-5\n")
    with pytest.raises(InputError, match="ref.csv:3: model 'x' appears twice"):
        load_board(f)
