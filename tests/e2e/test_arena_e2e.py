"""End to end through the CLI: the embedded default on the real models (kill -9 + resume is in tests/faults)."""
from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


def test_embedded_default(tmp_path):
    out = run_cli(["arena", "--config", "configs/local.yaml", "instructions.limit=1", f"run_dir={tmp_path / 'run'}"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Leaderboard" in out.stdout and "throughput" in out.stdout
    board = json.loads((tmp_path / "run" / "leaderboard.json").read_text())
    assert set(board["models"]) == {"smollm2", "gemma-270m", "gpt-4-0314", "gpt-3.5-turbo-0125"}
    battles = (tmp_path / "run" / "battles.jsonl").read_text().splitlines()
    assert len(battles) + board["summary"]["failed_battles"] == 6
    assert "answers" in out.stderr and "judge games" in out.stderr  # progress was shown
