"""`arena-ray self-reward`: Self-Rewarding LMs' loop, setup → run → cleanup, reading top to bottom.

Iteration t (M_{t-1} → M_t): serve M_{t-1}; it answers fresh prompts N times and judges every answer K times
with the additive rubric; it also judges held-out human-labelled pairs (judge quality); best/worst answers
become DPO pairs (ties dropped) → DPO → M_t, registered; M_t battles M_{t-1}, M0 and a reference model's
recorded answers in the arena (the config's judge; evaluate.py): win rates, length-controlled win rate, answer
length, and a warning (self_reward.stop_on_hacking: a stop) when answers only grew longer. Every stage writes a
done.json (kit.once) and the request files resume mid-stage.
Layout under self_reward.dir: registry.jsonl, iter<t>/{prompts,selfjudge,train,arena}/, eval/ (M0 against the
reference, every model's eval answers), summary.{json,md}.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import pyarrow as pa

from arena_ray.data.ingest import load_instructions
from arena_ray.data.preferences import load_pandalm
from arena_ray.errors import ConfigError, InputError
from arena_ray.judging.agreement import agreement
from arena_ray.judging.prompts import load_rubric_template
from arena_ray.rating.winrates import length_hacking
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text, write_atomic
from arena_ray.serving.cluster import ray_session
from arena_ray.serving.deployments import stage_serving
from arena_ray.settings import Config, dump
from arena_ray.train.formats import MESSAGES, preference_messages
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.kit import once, train_version
from arena_ray.workflows.selfreward import evaluate, instruct
from arena_ray.workflows.selfreward import seed as seed_stage
from arena_ray.workflows.selfreward.judge import self_judge_served
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
    if sr.prompts.source == "generate":  # each iteration's model writes its own prompts (instruct.py)
        instruct.check_sources(sr)
        prompts = [None] * sr.iterations
    else:
        prompts = iteration_prompts(sr)
    human = load_pandalm(sr.agreement.path, sr.agreement.offset, sr.agreement.limit) if sr.agreement.path else []
    registry = Registry(root)
    registry.register(version(sr.model, 0), Path(config.models[sr.model].path), parent=None, stage="base",
                      iteration=0)
    versions = [version(sr.model, 0)]
    rows = []
    # --- run
    warning = None
    with ray_session(config.ray), stage_serving(config.serve):
        base = evaluate.baseline(config, root, registry, show_progress)
        if sr.seed is not None:
            versions.append(seed_stage.run(config, root, registry, template, show_progress))
        first = len(versions)
        for t, batch in enumerate(prompts, start=1):
            it = root / f"iter{t}"
            previous, current = versions[-1], version(sr.model, first + t - 1)
            if batch is None:
                batch = instruct.generate_prompts(config, it, registry, previous, t,
                                                  instruct.earlier_prompts(root, t), show_progress)
            judged = once(it / "selfjudge", lambda: self_judge(config, it, registry, previous, batch, human,
                                                               template, t, show_progress))
            trained = train_version(config, registry, method="dpo", base=previous, output=current,
                                    data=it / "selfjudge" / "dpo.parquet", stage_dir=it, settings=sr.train,
                                    iteration=t, model=sr.model, storage=root / "ray_train")
            arena = evaluate.rate_against(config, root, it, registry, current, previous, show_progress)
            versions.append(current)
            rows.append(iteration_row(t, previous, current, judged, trained, arena))
            made = it / "prompts" / "done.json"  # the model's own prompts: how many it wrote, kept, refused
            rows[-1]["generated"] = json.loads(made.read_text()) if made.exists() else None
            warning = length_hacking(guard_rows(versions[0], base, rows), sr.max_length_growth)
            if warning:
                log.warning("%s", warning)
            if warning and sr.stop_on_hacking:
                log.warning("self_reward.stop_on_hacking: stopping after iteration %d of %d", t, sr.iterations)
                break
    # --- results
    summary = {"m0": versions[0], "baseline": base, "iterations": rows, "length_hacking": warning}
    (root / "summary.json").write_text(json_text(summary, indent=2) + "\n")
    table = to_markdown(rows, base) + (f"\n**Warning:** {warning}\n" if warning else "")
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


def guard_rows(m0: str, base: Optional[dict], rows: list[dict]) -> list[dict]:
    """The hacking guard's view: M0 (from its baseline arena), then each iteration's model."""
    first = {"version": m0, **{k: (base or {}).get(k) for k in ("mean_length", "lc_win_rate")}}
    return [first, *({"version": r["to"], "mean_length": r["arena"].get("mean_length"),
                      "lc_win_rate": r["arena"].get("lc_win_rate")} for r in rows)]


def iteration_row(t: int, previous: str, current: str, judged: dict, trained: dict, arena: dict) -> dict:
    m = trained["metrics"]
    return {"iteration": t, "from": previous, "to": current,
            **{k: judged[k] for k in ("prompts", "samples", "pairs_kept", "dropped_ties", "dropped_unscored",
                                      "judgments", "judgments_unparsed", "score_histogram", "mean_reward",
                                      "mean_pair_gap", "judge_agreement")},
            "dpo": {"skipped": trained.get("skipped"), "loss_first": m.get("loss_first"),
                    "loss_last": m.get("loss_last"), "margin_last": m.get("margin_last")},
            "arena": arena}
