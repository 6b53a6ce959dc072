"""The coordinator's and driver's metrics reach Prometheus: a local Ray with a metrics export port, a small
arena (instant fake engines deployed as Serve apps), then the node's /metrics endpoint is scraped."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from arena_ray.settings import from_dict
from arena_ray.testing.fakes import LengthJudge
from arena_ray.workflows.arena import run_arena
from tests.helpers import tiny_config_dict

pytestmark = pytest.mark.slow


def scrape(port: int, wanted: tuple[str, ...], timeout: float = 90) -> str:
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        if all(w in text for w in wanted):
            return text
        time.sleep(2)
    raise AssertionError(f"missing {[w for w in wanted if w not in text]} after {timeout}s")


def test_arena_metrics_are_scraped(local_ray, tmp_path, tiny_model_dir):
    data = tiny_config_dict(tmp_path / "metrics-run", tiny_model_dir, limit=3)
    result = run_arena(from_dict(data), show_progress=False, engine_factories={"tiny": LengthJudge})
    assert len(result.tally.battles) == 9
    text = scrape(local_ray.metrics_port, ("ray_arena_judge_games_done", "ray_arena_position_disagreement_rate",
                                           "ray_arena_tokens_per_s", "ray_arena_battles"))
    games = [float(v) for v in re.findall(r'^ray_arena_judge_games_done_total\{[^}]*run="metrics-run"[^}]*\} (\S+)',
                                          text, re.M)]
    assert games and sum(games) == 18
    battles = re.findall(r'^ray_arena_battles\{[^}]*run="metrics-run"[^}]*\} (\S+)', text, re.M)
    assert battles and float(battles[-1]) == 9
    assert 'role="judge"' in text

