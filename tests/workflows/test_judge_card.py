"""Judge cards with a real served judge (a tiny vLLM model on the session's local Ray): `arena-ray judge-eval`
on two shipped human-labelled sets writes a card that its per-item parquet reproduces, and an arena run
measures its judge's card and prints it under the board."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from arena_ray.cli import main
from arena_ray.settings import from_dict
from arena_ray.workflows.arena import run_arena
from tests.helpers import SHARED_DATA, tiny_config_dict

pytestmark = pytest.mark.slow
PREFS = SHARED_DATA / "preferences"


def test_judge_eval_card_is_reproduced_by_its_parquet(local_ray, tmp_path, tiny_model_dir, capsys):
    data = tiny_config_dict(tmp_path / "run", tiny_model_dir)
    data["judge"]["card_cache_dir"] = str(tmp_path / "cards")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    out = tmp_path / "eval"
    assert main(["judge-eval", "--config", str(tmp_path / "c.yaml"), "--data", str(PREFS / "llmbar_natural.json"),
                 str(PREFS / "hh_rlhf_harmless_test.jsonl"), "--out", str(out), "--limit", "4"]) == 0
    assert "Judge card: tiny" in capsys.readouterr().out
    card = json.loads((out / "judge_card.json").read_text())
    rows = pq.read_table(out / "judge_eval.parquet").to_pylist()
    assert len(rows) == card["items"] == 8 and all(r["verdict_ab"] and r["verdict_ba"] for r in rows)
    judged = [r for r in rows if r["verdict"] is not None]
    assert card["accuracy"] == round(sum(r["verdict"] == r["human"] for r in judged) / len(judged), 4)
    assert card["position_consistency"] == round(sum(r["verdict_ab"] == r["verdict_ba"] for r in rows) / 8, 4)
    assert len((out / "judgments.jsonl").read_text().splitlines()) >= 16   # both orders of every pair

    data["arena"]["competitors"] = ["gpt-4-0314", "gpt-3.5-turbo-0125"]
    data["judge"].update({"card": True, "card_limit": 2})
    result = run_arena(from_dict(data), show_progress=False)
    board = json.loads((tmp_path / "run" / "leaderboard.json").read_text())["judge"]
    assert board["items"] == 2 and board["run_position_consistency"] is not None and len(result.tally.battles) == 2
    assert "## Judge: tiny" in (tmp_path / "run" / "leaderboard.md").read_text()
    assert (tmp_path / "run" / "judge_card" / "judge_eval.parquet").exists()
