"""`arena-ray export alpaca-eval`: each model's answers as AlpacaEval's model_outputs.json, loaded with AlpacaEval's
own reader (`alpaca_eval.utils`, from the 0.6.6 wheel that scripts/setup.sh downloads; the package's __init__ pulls
its CLI and dotenv, so its submodules are imported under a bare package)."""
from __future__ import annotations

import importlib
import json
import sys
import types
import zipfile
from pathlib import Path

import pytest

from arena_ray.arena.ledger import Ledger, save_instructions
from arena_ray.cli import main
from arena_ray.records import Generation, Instruction
from tests.helpers import fake_arena_run

WHEELS = Path(__file__).resolve().parents[2] / ".cache" / "wheels"


@pytest.fixture(scope="module")
def alpaca_eval_utils(tmp_path_factory):
    wheels = sorted(WHEELS.glob("alpaca_eval-0.6.6-*.whl"))
    assert wheels, f"AlpacaEval 0.6.6's wheel is missing from {WHEELS}: run scripts/setup.sh"
    root = tmp_path_factory.mktemp("alpaca_eval")
    zipfile.ZipFile(wheels[0]).extractall(root)
    package = types.ModuleType("alpaca_eval")
    package.__path__ = [str(root / "alpaca_eval")]
    saved = {k: v for k, v in sys.modules.items() if k == "alpaca_eval" or k.startswith("alpaca_eval.")}
    sys.modules["alpaca_eval"] = package
    try:
        yield importlib.import_module("alpaca_eval.utils")
    finally:
        for k in [k for k in sys.modules if k == "alpaca_eval" or k.startswith("alpaca_eval.")]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture
def run(tmp_path) -> Path:
    run = tmp_path / "run"
    save_instructions(run, [Instruction("q1", "Say {hi} — in French.", "arena_hard"), Instruction("q2", "Add 2+2.", "t"),
                            Instruction("mt", "First?", "mt_bench", turns=("Second?",))])
    Ledger(run).append_generations(
        [Generation(q, m, f"{m} on {q}", 1, 1, 0.0, "stop") for q in ("q1", "q2", "mt") for m in ("big", "small")]
        + [Generation("q2", "broken", "", 1, 0, 0.0, "error", error="no answer"),
           Generation("q1", "broken", "broken on q1", 1, 1, 0.0, "stop")])
    return run


def test_model_outputs_load_in_alpaca_eval(run, tmp_path, alpaca_eval_utils, capsys):
    assert main(["export", "alpaca-eval", str(run), str(tmp_path / "out")]) == 0
    frames = {m: alpaca_eval_utils.load_or_convert_to_dataframe(tmp_path / "out" / m / "model_outputs.json")
              for m in ("big", "small", "broken")}
    for model, df in frames.items():
        assert {"instruction", "output", "generator", "dataset"} <= set(df.columns)
        assert alpaca_eval_utils.get_generator_name(None, df) == model  # AlpacaEval's leaderboard name
    assert list(frames["big"]["instruction"]) == list(frames["small"]["instruction"]) == ["Say {hi} — in French.",
                                                                                         "Add 2+2."]
    assert list(frames["big"]["output"]) == ["big on q1", "big on q2"]  # the multi-turn one is left out
    assert list(frames["broken"]["instruction_id"]) == ["q1"]  # a failed answer is not an output
    assert "big: 2 outputs" in capsys.readouterr().out


def test_export_refuses_unknown_models_and_its_own_input(run, tmp_path, capsys):
    assert main(["export", "alpaca-eval", str(run), str(tmp_path / "o"), "--models", "ghost"]) == 3
    assert "no answers of ['ghost']" in capsys.readouterr().err
    assert main(["export", "alpaca-eval", str(run), str(run)]) == 2
    assert "would write into the input" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (run / "big").exists()  # nothing written on a refusal


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory) -> Path:
    """Answers repeat the prompt 1, 2 or 3 times; the judge scores the longer answer 8 and the other 4."""
    from arena_ray.testing.fakes import LengthJudge

    run = tmp_path_factory.mktemp("hard") / "run"
    fake_arena_run(run, [Instruction(f"q{i}", f"Explain idea {i}.", "arena_hard") for i in range(3)],
                   {"short": 1, "mid": 2, "long": 3}, LengthJudge())
    return run


def test_arena_hard_layout_and_labels(judged_run, tmp_path, capsys):
    """Field names and game order as arena-hard-auto's show_result.py (v0.1, 0489bf3) reads them: game 1 shows
    the baseline as A, game 2 the model as A; `A>>B` etc. from the two scores (gap >= 3: `>>`)."""
    out = tmp_path / "hard"
    assert main(["export", "arena-hard", str(judged_run), str(out), "--baseline", "mid"]) == 0
    answers = [json.loads(line) for line in (out / "model_answer" / "long.jsonl").read_text().splitlines()]
    assert [a["question_id"] for a in answers] == ["q0", "q1", "q2"] and answers[0]["model_id"] == "long"
    assert answers[0]["choices"][0]["turns"][0]["content"] == " ".join(["Explain idea 0."] * 3)
    assert sorted(p.name for p in (out / "model_judgment" / "judge").iterdir()) == ["long.jsonl", "short.jsonl"]
    for model, (game1, game2) in (("long", ("B>>A", "A>>B")), ("short", ("A>>B", "B>>A"))):
        rows = [json.loads(line) for line in (out / "model_judgment" / "judge" / f"{model}.jsonl").read_text()
                .splitlines()]
        assert len(rows) == 3 and {r["model"] for r in rows} == {model} and {r["judge"] for r in rows} == {"judge"}
        assert all([g["score"] for g in r["games"]] == [game1, game2] and r["games"][0]["judgment"] for r in rows)
    assert main(["export", "arena-hard", str(judged_run), str(tmp_path / "h2"), "--baseline", "mid",
                 "--strong-gap", "5"]) == 0  # a gap of 4 is then only `>`
    row = json.loads((tmp_path / "h2" / "model_judgment" / "judge" / "long.jsonl").read_text().splitlines()[0])
    assert [g["score"] for g in row["games"]] == ["B>A", "A>B"]


def test_arena_hard_export_refusals(judged_run, tmp_path, capsys):
    assert main(["export", "arena-hard", str(judged_run), str(tmp_path / "o"), "--baseline", "ghost"]) == 3
    assert "baseline 'ghost' has no answers" in capsys.readouterr().err
    assert main(["export", "arena-hard", str(judged_run), str(tmp_path / "o"), "--baseline", "mid",
                 "--strong-gap", "nan"]) == 2
    assert "--strong-gap nan" in capsys.readouterr().err
