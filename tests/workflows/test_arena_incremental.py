"""Boards that grow without redoing work, on a real local Ray with Serve (fake judge, recorded answers): a
model added to a finished run is battled alone, and a second run with the same judge and answers takes every
verdict from the shared judgment cache, asking the judge nothing."""
from __future__ import annotations

import json

import pytest

from arena_ray.settings import from_dict
from arena_ray.testing.fakes import LengthJudge
from arena_ray.workflows.arena import run_arena
from tests.helpers import ANSWERS, tiny_config_dict

pytestmark = pytest.mark.slow
FAKE = {"tiny": LengthJudge}


def config(tmp_path, run: str, competitors: list[str], tiny_model_dir):
    data = tiny_config_dict(tmp_path / run, tiny_model_dir, limit=3, extra_models={
        "gpt-4-0613": {"engine": "replay", "path": str(ANSWERS / "gpt-4-0613.jsonl"), "num_cpus": 0.1}})
    data["arena"]["competitors"] = competitors
    data["judge"]["cache_dir"] = str(tmp_path / "judgment-cache")
    return from_dict(data)


def test_added_model_battles_alone_and_a_cache_answers_the_next_run(local_ray, tmp_path, tiny_model_dir):
    two = ["gpt-4-0314", "gpt-3.5-turbo-0125"]
    first = run_arena(config(tmp_path, "run", two, tiny_model_dir), show_progress=False, engine_factories=FAKE)
    assert len(first.tally.battles) == 3 and first.stats["cache_misses"] == 6

    three = run_arena(config(tmp_path, "run", two + ["gpt-4-0613"], tiny_model_dir), show_progress=False,
                      engine_factories=FAKE)
    assert three.stats["generations_total"] == 3                # only the new model answered
    assert three.stats["games_total"] == 2 * 3 * 2               # only its two pairs were judged
    board = json.loads((tmp_path / "run" / "leaderboard.json").read_text())
    assert set(board["models"]) == set(two + ["gpt-4-0613"]) and len(three.tally.battles) == 9

    again = run_arena(config(tmp_path, "other-run", two + ["gpt-4-0613"], tiny_model_dir), show_progress=False,
                      engine_factories=FAKE)
    assert again.stats["meters"]["judge"]["requests"] == 0       # the judge was asked nothing
    assert again.stats["cache_hits"] == 18 and again.stats["cache_misses"] == 0
    stats = json.loads((tmp_path / "other-run" / "stats.json").read_text())["this_run"]
    assert stats["cache_hits"] == 18
    assert {b.battle_id: b.winner for b in again.tally.battles} == {b.battle_id: b.winner for b in three.tally.battles}
