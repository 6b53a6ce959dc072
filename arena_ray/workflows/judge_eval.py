"""`arena-ray judge-eval`: the configured judge on human-labelled pairs → judge_eval.parquet and its card,
setup → run → cleanup. The judging itself (both orders, the arena's parsing and combining) is in
arena/judge_eval.py."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from arena_ray.arena import judge_eval
from arena_ray.arena.scheduler import judge_settings, retry_policy
from arena_ray.data.preferences import load_card_pairs
from arena_ray.errors import ConfigError
from arena_ray.judging.card import to_markdown
from arena_ray.judging.prompts import load_template
from arena_ray.records.outputs import output_dir
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.cluster import ray_session
from arena_ray.serving.deployments import served
from arena_ray.settings import Config


def run_judge_eval(config: Config, data: Sequence[str], out: str, limit: int | None = None,
                   show_progress: bool = True) -> dict:
    # --- setup: everything that can be checked without a cluster, first
    if config.judge is None:
        raise ConfigError("this config has no 'judge' section (see configs/local.yaml)")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    output_dir(out, data)
    load_card_pairs(data, limit)  # bad files fail here, before anything is served
    template = load_template(config.judge.prompt)
    js = judge_settings(config, template)
    judges = config.judges()
    # --- run: serve only the judge (or the panel)
    with ray_session(config.ray), served({n: config.models[n] for n in judges}, config.serve) as handles:
        clients = {n: ServeModelClient(handles[n], config.models[n].replicas * config.models[n].max_ongoing_requests)
                   for n in judges}
        card = judge_eval.measure(config, js, clients, retry_policy(config), list(data), limit, Path(out),
                                  show_progress)
    if show_progress:
        print(to_markdown(card, f"Judge card: {' + '.join(judges)}"))
    return card
