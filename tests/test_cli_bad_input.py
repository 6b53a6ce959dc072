"""Bad or foreign input to the commands that serve nothing (rate, consistency, import-reviews, curate, report):
each case is one line on stderr naming the file, record and field or the option, a non-zero exit, no traceback,
and no input changed. The cases are the ones a probe of the CLI found (tracebacks, silent acceptances)."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from arena_ray.cli import main
from tests.data.test_ingest import DATA, needs_data

pytestmark = needs_data

BATTLES = DATA / "battles" / "arena_hard_battles.jsonl"
REFERENCE = DATA / "leaderboards" / "lmarena_text_2025-08-06.csv"
REVIEWS = DATA / "battles" / "vicuna_bench_2023_reviews"
ANSWERS = DATA / "answers" / "vicuna_bench_2023"


def digest(root: Path) -> dict:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def fails(args: list[str], capsys, needle: str, code: int | None = None, keep: tuple[Path, ...] = ()) -> str:
    """Run the CLI; it must fail with one line holding `needle`, and leave the `keep` paths byte for byte."""
    before = {str(p): digest(p) for p in keep}
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and (code is None or rc == code), (rc, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1 and needle in err, err
    assert {str(p): digest(p) for p in keep} == before, "an input changed"
    return err


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rated") / "board"
    assert main(["rate", "--battles", str(BATTLES), "--out", str(out), "--bootstrap", "10"]) == 0
    return out


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# --- output paths -------------------------------------------------------------------------------------------

def test_outputs_that_are_files_directories_or_inputs_are_refused(tmp_path, board, capsys):
    a_file = write(tmp_path / "a_file", "keep me")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    ref = ["--reference", REFERENCE]
    fails(["rate", "--battles", BATTLES, "--out", a_file], capsys, "is a file, not a directory", 2, (a_file,))
    fails(["rate", "--battles", BATTLES, "--out", a_file / "sub"], capsys, "is a file, not a directory", 2)
    fails(["rate", "--battles", board, "--out", board], capsys, "would write into the input", 2, (board,))
    fails(["consistency", "--ours", board, *ref, "--out", a_dir], capsys, "is a directory", 2)
    fails(["consistency", "--ours", board / "leaderboard.json", *ref, "--out", board / "leaderboard.json"], capsys,
          "would overwrite the input", 2, (board,))
    fails(["import-reviews", "--reviews", REVIEWS, "--answers", ANSWERS, "--out", a_dir], capsys, "is a directory", 2)
    review = next(REVIEWS.rglob("*.jsonl"))
    fails(["import-reviews", "--reviews", REVIEWS, "--answers", ANSWERS, "--out", review], capsys,
          "would overwrite the input", 2)
    run = tmp_path / "run"  # a rated battles file beside its board: what report reads
    shutil.copytree(board, run)
    shutil.copy(BATTLES, run / "battles.jsonl")
    fails(["report", run, "--out", a_dir], capsys, "is a directory", 2)
    fails(["report", run, "--out", run / "battles.jsonl"], capsys, "would overwrite the input", 2, (run / "battles.jsonl",))


def test_a_run_is_rated_into_a_folder_of_its_own(tmp_path, board):
    run = tmp_path / "run"
    shutil.copytree(board, run)
    assert main(["rate", "--battles", str(BATTLES), "--out", str(run / "rated"), "--bootstrap", "0"]) == 0


# --- options ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, needle", [
    (["--bootstrap", "1000000000000"], "--bootstrap 1000000000000: Input should be less than or equal to 100000"),
    (["--bootstrap", "-5"], "--bootstrap -5: Input should be greater than or equal to 0"),
    (["--seed", "-1"], "--seed -1: Input should be greater than or equal to 0"),
    (["--anchor", "gpt-4o:nan"], "finite rating"),
    (["--anchor", "gpt-4o:1e308"], "finite rating within"),
    (["--anchor", "nosuch:1000"], "nosuch"),
])
def test_rate_options_out_of_range(tmp_path, capsys, option, needle):
    fails(["rate", "--battles", BATTLES, "--out", tmp_path / "o", *option], capsys, needle, 2)
    assert not (tmp_path / "o" / "leaderboard.json").exists()


@pytest.mark.parametrize("gap, value", [("--sft-gap", "nan"), ("--dpo-gap", "inf"), ("--rm-gap", "-3")])
def test_curate_gaps_must_be_finite_and_not_negative(tmp_path, capsys, gap, value):
    fails(["curate", "--run", tmp_path, "--target", "x", "--out", tmp_path / "o", gap, value], capsys, gap, 2)


# --- battle files -------------------------------------------------------------------------------------------

LINE = {"model_a": "x", "model_b": "y", "winner": "model_a"}


@pytest.mark.parametrize("content, needle", [
    ([{**LINE, "model_a": "x" * 300}], "characters long"),
    ([{**LINE, "model_b": "a\nb"}], "control character"),
    ([{**LINE, "conversation_a": [{"role": "assistant", "content": 7}]}], "content is not a string"),
    ([{**LINE, "conversation_a": [{"role": "assistant", "content": "a", "num_tokens": -2}]}], "num_tokens"),
    (b"\xe9t\xe9\n", "not UTF-8 text"),
    (b"", "no battles to rate"),
])
def test_bad_battle_records(tmp_path, capsys, content, needle):
    path = write(tmp_path / "b.jsonl", content if isinstance(content, bytes)
                 else "\n".join(json.dumps(r) for r in content) + "\n")
    fails(["rate", "--battles", path, "--out", tmp_path / "o"], capsys, needle, 3)


def test_names_with_surrounding_spaces_are_one_model(tmp_path, capsys):
    rows = [{**LINE, "model_a": " a"}, {**LINE, "model_a": "a ", "winner": "model_b"}, {**LINE, "model_a": "a"}]
    path = write(tmp_path / "b.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert main(["rate", "--battles", str(path), "--out", str(tmp_path / "o"), "--bootstrap", "0"]) == 0
    assert set(json.loads((tmp_path / "o" / "leaderboard.json").read_text())["models"]) == {"a", "y"}


def test_gzipped_fastchat_arrays_are_read(tmp_path):
    records = [json.loads(line) for line in BATTLES.read_text().splitlines()]
    path = write(tmp_path / "clean_battle.json.gz", gzip.compress(json.dumps(records).encode()))
    assert main(["rate", "--battles", str(path), "--out", str(tmp_path / "o"), "--bootstrap", "0"]) == 0


# --- leaderboards for consistency and report ----------------------------------------------------------------

@pytest.mark.parametrize("doc, needle", [
    ({"models": [1, 2]}, "'models' must map each model name"),
    ({"summary": {}}, "'models' must map each model name"),
    ({"models": {"gpt-4o": {"rating": "high"}}}, "models.gpt-4o: field 'rating' is not a number"),
    ({"models": {"gpt-4o": {"rating": 1000, "ci_low": "x"}}}, "field 'ci_low' is not a number"),
    ({"models": {"gpt-4o": {"rating": "1000"}}}, "models.gpt-4o: field 'rating' is not a number: '1000'"),
    ({"models": {"gpt-4o": {"rating": 1000, "ci_low": "990", "ci_high": 1010}}}, "field 'ci_low' is not a number"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_leaderboards_are_named(tmp_path, capsys, doc, needle):
    path = write(tmp_path / "leaderboard.json", json.dumps(doc))
    fails(["consistency", "--ours", path, "--reference", REFERENCE], capsys, needle, 3)
    fails(["report", tmp_path, "--out", tmp_path / "r.html"], capsys, needle, 3)


@pytest.mark.parametrize("csv, needle", [
    ("name,arena_score\nx,1000\n", "no 'model' column"),
    ("model,arena_score\ngpt-4o,nan\n", "field 'arena_score' is not a finite number"),
    (b"model,arena_score\n\xe9,1000\n", "not UTF-8 text"),
])
def test_bad_reference_csvs_are_named(tmp_path, board, capsys, csv, needle):
    path = write(tmp_path / "ref.csv", csv)
    fails(["consistency", "--ours", board, "--reference", path], capsys, needle, 3)


def test_a_reference_csv_with_a_byte_order_mark_is_read(tmp_path, board):
    path = write(tmp_path / "ref.csv", "\ufeff" + REFERENCE.read_text())
    names = Path(__file__).resolve().parents[1] / "configs" / "names" / "lmarena.json"
    assert main(["consistency", "--ours", str(board), "--reference", str(path), "--names", str(names)]) == 0


def test_report_on_a_damaged_flywheel_or_nothing(tmp_path, capsys):
    fails(["report", tmp_path / "missing"], capsys, "no such directory", 3)
    fails(["report", write(tmp_path / "leaderboard.json", "{}")], capsys, "a file; report reads an arena run", 3)
    write(tmp_path / "fw" / "registry.jsonl", "")
    write(tmp_path / "fw" / "summary.json", json.dumps({"iterations": "x"}))
    fails(["report", tmp_path / "fw", "--out", tmp_path / "r.html"], capsys, "'iterations' must be", 3)
    write(tmp_path / "fw" / "summary.json", "[]")
    fails(["report", tmp_path / "fw", "--out", tmp_path / "r.html"], capsys, "expected a JSON object", 3)
    (tmp_path / "fw" / "registry.jsonl").unlink()
    fails(["report", tmp_path / "fw", "--out", tmp_path / "r.html"], capsys, "found only summary.json", 3)


# --- Vicuna-bench reviews -----------------------------------------------------------------------------------

def reviews(tmp_path, answers: list[dict], review: dict) -> list[str]:
    write(tmp_path / "ans" / "answer_x.jsonl", "\n".join(json.dumps(a) for a in answers))
    write(tmp_path / "rev" / "review.jsonl", json.dumps(review))
    return ["import-reviews", "--reviews", str(tmp_path / "rev"), "--answers", str(tmp_path / "ans"),
            "--out", str(tmp_path / "out.jsonl")]


ANS = [{"answer_id": "1", "model_id": "m:1", "text": "a"}, {"answer_id": "2", "model_id": "n:1", "text": "b"}]
REV = {"answer1_id": "1", "answer2_id": "2", "score": [8, 6]}


@pytest.mark.parametrize("answers, review, needle", [
    ([{"answer_id": "1", "text": "a"}, ANS[1]], REV, "field 'model_id' missing"),
    ([{**ANS[0], "model_id": 7}, ANS[1]], REV, "field 'model_id' missing or not a string"),
    ([ANS[0], ANS[1], {**ANS[1], "model_id": "o:1"}], REV, "answer_id '2' already given at"),
    (ANS, {**REV, "score": "78"}, "field 'score' must be two numbers"),
    (ANS, {**REV, "score": ["7", 8]}, "field 'score' must be two numbers"),
    (ANS, {**REV, "score": [1e300, 5]}, "from -1 to 10"),
    (ANS, {**REV, "score": [-3, 5]}, "from -1 to 10"),
    (ANS, {k: v for k, v in REV.items() if k != "score"}, "field 'score'"),
    (ANS, {**REV, "answer2_id": "9"}, "field 'answer2_id' ('9') names no answer"),
])
def test_bad_reviews_and_answers_are_named(tmp_path, capsys, answers, review, needle):
    fails(reviews(tmp_path, answers, review), capsys, needle, 3)
    assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_answers_folder_says_so(tmp_path, capsys):
    fails(["import-reviews", "--reviews", REVIEWS, "--answers", tmp_path / "none", "--out", tmp_path / "o.jsonl"],
          capsys, "no answer_*.jsonl files", 3)


def test_exports_refuse_runs_without_answers_and_names_that_escape(tmp_path, capsys):
    from arena_ray.arena.ledger import Ledger, save_instructions
    from arena_ray.records import Generation, Instruction

    run = tmp_path / "run"
    save_instructions(run, [Instruction("q1", "Hi?", "t")])
    fails(["export", "alpaca-eval", run, tmp_path / "o"], capsys, "no answers recorded", 3)
    assert not (run / "ledger").exists()  # reading a run creates nothing in it
    Ledger(run).append_generations([Generation("q1", "../../escaped", "x", 1, 1, 0.0, "stop"),
                                    Generation("q1", "mid", "y", 1, 1, 0.0, "stop")])
    for fmt in (["alpaca-eval"], ["arena-hard", "--baseline", "mid"]):
        fails(["export", fmt[0], run, tmp_path / "o" / "a", *fmt[1:]], capsys, "path separator", 3)
    assert not list(tmp_path.glob("**/escaped*"))
