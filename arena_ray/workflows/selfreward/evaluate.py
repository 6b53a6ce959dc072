"""How each self-rewarding iteration is measured, on the eval prompts with the config's judge (both orders per
battle): M_t against M_{t-1} (the paper's head-to-head), against M0 (win rate with a bootstrap interval), and
against a reference model's recorded answers (raw and AlpacaEval 2.0 length-controlled win rate); plus M_t's mean
answer length and judge score, for the reward-hacking guard. M0 is measured against the reference once, first.

Models answer once: every served model's eval answers go to eval/answers/<version>.jsonl and later arenas
replay them.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from arena_ray.data.battles import read_battles
from arena_ray.rating import bradley_terry
from arena_ray.rating.answer_stats import answer_stats
from arena_ray.rating.leaderboard import summary_of
from arena_ray.rating.matrix import win_rate
from arena_ray.rating.winrates import comparisons_from_battles, head_to_head, length_controlled_win_rate
from arena_ray.settings import Config
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.arena import run_arena
from arena_ray.workflows.kit import arena_config, once, record_answers
from arena_ray.workflows.selfreward.judge import model_entry


def answers_path(root: Path, name: str) -> Path:
    return root / "eval" / "answers" / f"{name}.jsonl"


def baseline(config: Config, root: Path, registry: Registry, show: bool) -> Optional[dict]:
    """M0 against the reference (when one is configured): M0's own length and LC win rate, the guard's base."""
    sr = config.self_reward
    if sr.reference is None:
        return None
    m0 = version(sr.model, 0)
    return once(root / "eval" / m0, lambda: rate(config, root, root / "eval" / m0, registry, m0, [], show))


def rate_against(config: Config, root: Path, it: Path, registry: Registry, current: str, previous: str,
                 show: bool) -> dict:
    """M_t against M_{t-1}, M0 and the reference; earlier versions replay their recorded answers."""
    m0 = version(config.self_reward.model, 0)
    return once(it / "arena", lambda: rate(config, root, it / "arena", registry, current,
                                           list(dict.fromkeys([previous, m0])), show))


def rate(config: Config, root: Path, run_dir: Path, registry: Registry, current: str, earlier: list[str],
         show: bool) -> dict:
    sr = config.self_reward
    # A live M0 battles under the model's own name (its entry is the config's, as the judge's may be), renamed
    # back to its version name below.
    live = {v for v in [current, *earlier] if not answers_path(root, v).exists()}
    alias = {v: sr.model if v == version(sr.model, 0) and v in live else v for v in [current, *earlier]}
    models = {alias[v]: model_entry(config, registry, v) if v in live else
              {"engine": "replay", "path": str(answers_path(root, v)), "num_cpus": 0.1} for v in [current, *earlier]}
    if sr.reference is not None:
        models[sr.reference.model] = {"engine": "replay", "path": sr.reference.answers, "num_cpus": 0.1}
    cfg = arena_config(config, run_dir, Path(sr.eval_instructions), sr.eval_limit, alias[current], models)
    result = run_arena(cfg, show_progress=show, between_stages=True)
    for v in live:
        record_answers(run_dir, alias[v], answers_path(root, v))
    back = {a: v for v, a in alias.items()}
    battles = [replace(b, model_a=back.get(b.model_a, b.model_a), model_b=back.get(b.model_b, b.model_b))
               for b in read_battles(str(run_dir)).battles]
    return {"battles": len(result.tally.battles), "failed_battles": result.tally.failed_battles,
            **measures(config, battles, current, earlier)}


def measures(config: Config, battles: list, current: str, earlier: list[str]) -> dict:
    sr, r = config.self_reward, config.rating
    ratings = {x.model: x for x in bradley_terry.fit_battles(battles, bootstrap_rounds=r.bootstrap_rounds,
                                                             seed=r.seed, scale=r.scale, base=r.base)} \
        if battles else {}
    rate_prev, games = win_rate(battles, current, earlier[0]) if earlier else (0.0, 0)
    m0 = version(sr.model, 0)
    lc = length_controlled_win_rate(comparisons_from_battles(battles, current, sr.reference.model)) \
        if sr.reference else None
    return {"win_rate": None if games == 0 else round(rate_prev, 3),
            "head_to_head": head_to_head(battles, current, m0, seed=r.seed) if current != m0 else None,
            "reference": sr.reference.model if sr.reference else None,
            "raw_win_rate": None if lc is None or lc["win_rate"] is None else round(lc["win_rate"], 4),
            "lc_win_rate": None if lc is None or lc["lc_win_rate"] is None else round(lc["lc_win_rate"], 4),
            **answer_stats(battles, current),
            "ratings": {m: summary_of(x) for m, x in ratings.items()}}
