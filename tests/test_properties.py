"""Property-based tests (Hypothesis) of the readers and parsers a user's files and a judge's text go through:
whatever they are given, they return a result or raise the project's one-line error (ArenaRayError), never
anything else, and what they accept keeps its invariants. Runs in the default tier: few examples, no deadline
(2-core CI), no database (a clean checkout each time); examples that once failed are kept as fixtures below."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arena_ray.data.battles import read_battles
from arena_ray.data.ingest import load_instructions
from arena_ray.data.leaderboards import load_board
from arena_ray.errors import ArenaRayError, InputError
from arena_ray.judging.parse import SCORE_MAX, SCORE_MIN, parse_pairwise, parse_rubric
from arena_ray.settings import from_dict
from arena_ray.settings.loading import apply_overrides, parse_override

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "local.yaml"

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
names = st.sampled_from(["x", "y", " x", "z\n", "", "w" * 200, 7, None])
battle_records = st.fixed_dictionaries(
    {"model_a": names, "model_b": names, "winner": st.sampled_from(["model_a", "model_b", "tie", "draw", None])},
    optional={"question_id": scalars, "conversation_a": json_values, "tstamp": scalars, "anony": scalars})


def _write_lines(path: Path, records) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


@SETTINGS
@given(records=st.lists(battle_records | json_values, min_size=1, max_size=6))
def test_battle_files_give_battles_or_a_named_error(tmp_path_factory, records):
    path = _write_lines(tmp_path_factory.mktemp("b") / "b.jsonl", records)
    try:
        battles = read_battles(path).battles
    except InputError as err:
        assert str(path) in str(err)
        return
    for b in battles:
        assert b.model_a != b.model_b and b.model_a == b.model_a.strip() and b.winner in (
            "model_a", "model_b", "tie", "tie (bothbad)")


@SETTINGS
@given(records=st.lists(json_values, min_size=1, max_size=5), as_array=st.booleans())
@example(records=[{"uid": None, "prompt": "hello"}], as_array=False)
@example(records=[{"instruction": "do", "input": 5}], as_array=True)
def test_instruction_files_give_instructions_or_a_named_error(tmp_path_factory, records, as_array):
    folder = tmp_path_factory.mktemp("i")
    path = folder / "i.json"
    if as_array:
        path.write_text(json.dumps(records))
    else:
        path = _write_lines(folder / "i.jsonl", records)
    try:
        instructions = load_instructions(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    assert all(i.instruction_id and i.instruction_id != "None" and i.text.strip() for i in instructions)


@SETTINGS
@given(models=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4) | json_values)
def test_leaderboards_give_finite_ratings_or_a_named_error(tmp_path_factory, models):
    path = tmp_path_factory.mktemp("l") / "leaderboard.json"
    path.write_text(json.dumps({"models": models}))
    try:
        board = load_board(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    assert all(math.isfinite(e.rating) for e in board.values())


@SETTINGS
@given(raw=st.text(max_size=200) | st.builds(lambda a, b, rest: f"{a} {b}\n{rest}", st.floats(-5, 20),
                                                st.integers(-3, 30), st.text(max_size=40)),
       score_line=st.sampled_from(["first", "last"]))
@example(raw="Scores: 11 3", score_line="last")
def test_judge_outputs_parse_to_scores_in_range_or_a_reason(raw, score_line):
    verdict = parse_pairwise(raw, score_line)
    if verdict.ok:
        assert SCORE_MIN <= verdict.score_1 <= SCORE_MAX and SCORE_MIN <= verdict.score_2 <= SCORE_MAX
    else:
        assert verdict.error and verdict.score_1 is None
    score = parse_rubric(raw)
    assert score is None or 0 <= score <= 5


override_keys = st.lists(st.text(st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=8), min_size=1,
                         max_size=4).map(".".join) | st.text(max_size=20)


@SETTINGS
@given(key=override_keys, value=st.text(max_size=20))
@example(key='models."gpt-4.5.max_tokens', value="1")
def test_overrides_apply_or_name_the_problem(key, value):
    import yaml

    data = yaml.safe_load(CONFIG.read_text())
    text = f"{key}={value}"
    try:
        path, _ = parse_override(text)
        from_dict(apply_overrides(data, [text]))
    except ArenaRayError:
        return
    assert path and all(path)


@pytest.mark.parametrize("text", ["rating.scale=.nan", "ray.num_cpus=true", "judge.tie_margin=.inf"])
def test_found_cases_stay_refused(text):
    import yaml

    with pytest.raises(ArenaRayError):
        from_dict(apply_overrides(yaml.safe_load(CONFIG.read_text()), [text]))
