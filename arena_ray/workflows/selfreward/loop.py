"""`arena-ray self-reward`: Self-Rewarding LMs' loop, setup → run → cleanup, reading top to bottom.

Iteration t (M_{t-1} → M_t): serve M_{t-1}; it answers fresh prompts N times and judges every answer K times
with the additive rubric; it also judges held-out human-labelled pairs (judge quality); best/worst answers
become DPO pairs (ties dropped) → DPO → M_t, registered; M_t battles M_{t-1} in the arena (the config's
judge). Every stage writes a done.json (kit.once) and the request files resume mid-stage.
Layout under self_reward.dir: registry.jsonl, iter<t>/{selfjudge,train,arena}/, summary.{json,md}.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from arena_ray.data.battles import read_battles
from arena_ray.data.ingest import load_instructions
from arena_ray.data.preferences import load_pandalm
from arena_ray.errors import ConfigError, InputError
from arena_ray.judging.agreement import agreement
from arena_ray.judging.prompts import load_rubric_template
from arena_ray.rating import bradley_terry
from arena_ray.rating.leaderboard import summary_of
from arena_ray.rating.matrix import win_rate
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text, write_atomic
from arena_ray.serving.cluster import ray_session
from arena_ray.serving.deployments import stage_serving
from arena_ray.settings import Config, dump
from arena_ray.train.formats import MESSAGES, preference_messages
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.arena import run_arena
from arena_ray.workflows.kit import arena_config, once, record_answers, train_version
from arena_ray.workflows.selfreward import seed as seed_stage
from arena_ray.workflows.selfreward.judge import model_entry, self_judge_served
from arena_ray.workflows.selfreward.pairs import select_pairs
from arena_ray.workflows.selfreward.summary import to_markdown

log = logging.getLogger(__name__)


def run_self_reward(config: Config, show_progress: bool = True) -> list[dict]:
    # --- setup: every check that needs no cluster
    if config.self_reward is None:
        raise ConfigError("this config has no 'self_reward' section (see configs/self_reward.yaml)")
    sr = config.self_reward
    root = output_dir(sr.dir, name="self_reward.dir")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(dump(config))
    template = load_rubric_template(sr.judge_prompt)
    prompts = iteration_prompts(sr)
    human = load_pandalm(sr.agreement.path, sr.agreement.offset, sr.agreement.limit) if sr.agreement.path else []
    registry = Registry(root)
    registry.register(version(sr.model, 0), Path(config.models[sr.model].path), parent=None, stage="base",
                      iteration=0)
    versions = [version(sr.model, 0)]
    rows = []
    # --- run
    with ray_session(config.ray), stage_serving(config.serve):
        if sr.seed is not None:
            versions.append(seed_stage.run(config, root, registry, template, show_progress))
        first = len(versions)
        for t, batch in enumerate(prompts, start=1):
            it = root / f"iter{t}"
            previous, current = versions[-1], version(sr.model, first + t - 1)
            judged = once(it / "selfjudge", lambda: self_judge(config, it, registry, previous, batch, human,
                                                               template, t, show_progress))
            trained = train_version(config, registry, method="dpo", base=previous, output=current,
                                    data=it / "selfjudge" / "dpo.parquet", stage_dir=it, settings=sr.train,
                                    iteration=t, model=sr.model, storage=root / "ray_train")
            arena = once(it / "arena", lambda: rate_against(config, it, registry, current, previous, show_progress))
            versions.append(current)
            rows.append(iteration_row(t, previous, current, judged, trained, arena))
    # --- results
    (root / "summary.json").write_text(json_text(rows, indent=2) + "\n")
    table = to_markdown(rows)
    (root / "summary.md").write_text(f"# Self-rewarding {root}\n\n{table}")
    if show_progress:
        print(table)
    return rows


def iteration_prompts(sr) -> list[list]:
    """Fresh prompts per iteration; an iteration that would get none is an error before anything runs."""
    p = sr.prompts
    pool = load_instructions(p.path, p.format, p.offset, p.per_iteration * sr.iterations)
    batches = [pool[i * p.per_iteration:(i + 1) * p.per_iteration] for i in range(sr.iterations)]
    for t, batch in enumerate(batches, start=1):
        if not batch:
            raise InputError(f"{p.path}: no prompts left for iteration {t} ({len(pool)} prompts from offset "
                             f"{p.offset}, {p.per_iteration} per iteration); lower iterations or per_iteration")
    return batches


def self_judge(config: Config, it: Path, registry: Registry, name: str, prompts, human, template, t: int,
               show: bool) -> dict:
    sr = config.self_reward
    out = it / "selfjudge"
    with self_judge_served(config, registry, name, template, show) as (judge, cfg):
        samples = judge.sample(prompts, out / "samples.jsonl", t, sr.max_tokens or cfg.max_tokens)
        text = {p.instruction_id: p.text for p in prompts}
        scores = judge.judge([(k, text[k.rsplit("#", 1)[0]], r.text) for k, r in samples.items()],
                             out / "judgments.jsonl", "self-judging")
        scored = judge.scored_samples(prompts, samples, scores)
        quality = agreement(human, judge.human_scores(human, out / "human.jsonl")) if human else None
    outcome = select_pairs(scored, sr.min_gap)
    table = pa.Table.from_pylist([{**p.__dict__, **preference_messages(p.prompt, p.chosen, p.rejected)}
                                  for p in outcome.pairs], schema=PAIR_SCHEMA)
    write_atomic(table, out / "dpo.parquet")
    report = {**outcome.report(scored), "judge_agreement": quality, "pairs_file": str(out / "dpo.parquet")}
    if not outcome.pairs:
        log.warning("iteration %d: no preference pairs (%d ties, %d prompts without two scored answers)", t,
                    outcome.dropped_ties, outcome.dropped_unscored)
    return report


# dpo.parquet: TRL's conversational preference columns, the prompt's id and both answers' self-judged scores.
PAIR_SCHEMA = pa.schema([("instruction_id", pa.string()), ("prompt", MESSAGES), ("chosen", MESSAGES),
                         ("rejected", MESSAGES), ("chosen_score", pa.float64()), ("rejected_score", pa.float64())])


def answers_path(it: Path) -> Path:
    return it / "arena" / "answers.jsonl"


def rate_against(config: Config, it: Path, registry: Registry, current: str, previous: str, show: bool) -> dict:
    """M_t against M_{t-1} on the eval prompts; M_{t-1} replays its answers from the previous iteration's arena."""
    sr = config.self_reward
    run_dir = it / "arena"
    earlier = answers_path(it.with_name(f"iter{int(it.name[4:]) - 1}"))
    prev = {"engine": "replay", "path": str(earlier), "num_cpus": 0.1} if earlier.exists() else \
        model_entry(config, registry, previous)
    name_prev = previous if earlier.exists() or previous != version(sr.model, 0) else sr.model
    models = {current: model_entry(config, registry, current), name_prev: prev}
    cfg = arena_config(config, run_dir, Path(sr.eval_instructions), sr.eval_limit, current, models)
    result = run_arena(cfg, show_progress=show, between_stages=True)
    record_answers(run_dir, current, answers_path(it))
    battles = [b if b.model_a != name_prev and b.model_b != name_prev else _renamed(b, name_prev, previous)
               for b in read_battles(str(run_dir)).battles]
    ratings = {r.model: r for r in bradley_terry.fit_battles(battles, bootstrap_rounds=config.rating.bootstrap_rounds,
                                                             seed=config.rating.seed, scale=config.rating.scale,
                                                             base=config.rating.base)} if battles else {}
    rate, games = win_rate(battles, current, previous)
    return {"battles": len(result.tally.battles), "failed_battles": result.tally.failed_battles,
            "win_rate": None if games == 0 else round(rate, 3),
            "ratings": {m: summary_of(r) for m, r in ratings.items()}}


def _renamed(b, old: str, new: str):
    return replace(b, model_a=new if b.model_a == old else b.model_a, model_b=new if b.model_b == old else b.model_b)


def iteration_row(t: int, previous: str, current: str, judged: dict, trained: dict, arena: dict) -> dict:
    m = trained["metrics"]
    return {"iteration": t, "from": previous, "to": current,
            **{k: judged[k] for k in ("prompts", "samples", "pairs_kept", "dropped_ties", "dropped_unscored",
                                      "judgments", "judgments_unparsed", "score_histogram", "mean_reward",
                                      "mean_pair_gap", "judge_agreement")},
            "dpo": {"skipped": trained.get("skipped"), "loss_first": m.get("loss_first"),
                    "loss_last": m.get("loss_last"), "margin_last": m.get("margin_last")},
            "arena": arena}
