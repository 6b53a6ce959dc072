"""End to end through the CLI: the embedded default on the real models, with active pairing (every pair once,
then the battles the refitted ratings ask for, within a budget) and the judge's card; then MT-bench's
multi-turn questions with reference answers on the same models, judged by a panel of both. kill -9 + resume is in tests/faults."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


def test_embedded_default_with_active_pairing(tmp_path):
    run = tmp_path / "run"
    out = run_cli(["arena", "--config", "configs/local.yaml", "instructions.limit=2", "arena.pairing=active",
                   "arena.max_battles=8", "arena.active.batch=2", f"run_dir={run}",
                   f"judge.card_cache_dir={tmp_path / 'cards'}", "judge.card_limit=8"])   # 8 of the 24 shipped pairs: CI time
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Leaderboard" in out.stdout and "throughput" in out.stdout
    # The judge's card, measured on the shipped human-labelled pairs, printed under the board with a warning:
    # SmolLM2-135M as a judge is weak (its verdict follows the order of the answers more often than not).
    assert "## Judge: smollm2" in out.stdout and "agreement with people" in out.stdout
    assert "position consistency on this run's battles" in out.stdout
    assert "Warning: this ranking is not reliable" in out.stdout
    judge = json.loads((run / "leaderboard.json").read_text())["judge"]
    assert judge["items"] == 8 and judge["reliable"] is False and judge["self_preference"] is not None
    assert "answers" in out.stderr and "judge games" in out.stderr  # progress was shown
    board = json.loads((run / "leaderboard.json").read_text())
    assert set(board["models"]) == {"smollm2", "gemma-270m", "gpt-4-0314", "gpt-3.5-turbo-0125"}
    rounds = [json.loads(line)["battles"] for line in (run / "active_rounds.jsonl").read_text().splitlines()]
    assert len({(a, b) for _, a, b in rounds[0]}) == len(rounds[0]) == 6   # the first round: every pair once
    assert sum(len(r) for r in rounds) <= 8                     # the budget
    battles = (run / "battles.jsonl").read_text().splitlines()
    assert len(battles) + board["summary"]["failed_battles"] == sum(len(r) for r in rounds)


def test_mt_bench_multi_turn_with_reference_answers_and_a_judge_panel(tmp_path):
    """MT-bench math questions (two turns, reference answers) between the two served models, judged by a
    panel of both (each judges every game; mean scores decide). The card is off: two more cards would cost
    minutes on 2 cores; panel cards are measured in tests/arena/test_panel.py."""
    run = tmp_path / "mt"
    out = run_cli(["arena", "--config", "configs/local.yaml", "instructions.path=../shared/data/instructions/mt_bench.jsonl",
                   "instructions.offset=30", "instructions.limit=2", "arena.competitors=[smollm2, gemma-270m]",
                   "judge.panel=[smollm2, gemma-270m]", "judge.card=false", "models.gemma-270m.max_tokens=96",
                   f"run_dir={run}"])
    assert out.returncode == 0, out.stderr[-3000:]
    gens = pq.read_table(run / "generations.parquet").to_pylist()
    ids = {(g["instruction_id"], g["model"]) for g in gens}
    assert ids == {(f"{q}{t}", m) for q in ("111", "112") for t in ("#turn1", "") for m in ("smollm2", "gemma-270m")}
    games = [g for g in pq.read_table(run / "judgments.parquet").to_pylist() if g["parse_ok"]]
    assert {g["prompt_version"] for g in games} == {"pairwise-multiturn-v1"}
    assert sorted((g["judge"], g["position"]) for g in games) == sorted(
        (j, p) for j in ("smollm2", "gemma-270m") for p in (0, 1) for _ in range(2))   # 2 battles x 2 orders x 2
    instructions = pq.read_table(run / "instructions.parquet").to_pylist()
    assert all(len(i["turns"]) == 1 and len(i["references"]) == 2 for i in instructions)   # math: references
    battles = [json.loads(line) for line in (run / "battles.jsonl").read_text().splitlines()]
    assert len(battles) == 2 and {b["judge"] for b in battles} == {"panel"}
    board = json.loads((run / "leaderboard.json").read_text())
    assert set(board["models"]) == {"smollm2", "gemma-270m"} and "never measured" in board["judge"]["why_not"][0]
