"""`arena-ray flywheel`: Arena Learning's loop, setup → run → cleanup, reading top to bottom.

For each iteration: battle the current version against the competitors on a fresh shard → curate → train
(sft, then dpo, then ppo, each on the next shard, as configured) → register the checkpoint → rate every
version on the offline test set; warn (flywheel.stop_on_hacking: stop) when a version only grew its answers. Every stage
resumes from what it wrote (stages.py). Ends with a table per iteration.
"""
from __future__ import annotations

import logging
from pathlib import Path

from arena_ray.data.battles import BattleRow, read_battles
from arena_ray.errors import ConfigError
from arena_ray.rating import bradley_terry
from arena_ray.rating.winrates import length_hacking
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text
from arena_ray.serving.cluster import ray_session
from arena_ray.serving.deployments import stage_serving
from arena_ray.settings import Config, dump
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.flywheel import focus, ppo_stage
from arena_ray.workflows.flywheel import stages as st
from arena_ray.workflows.flywheel.plan import Stage, plan, shards_needed
from arena_ray.workflows.flywheel.summary import focus_markdown, iteration_row, to_markdown, version_measures

log = logging.getLogger(__name__)


def run_flywheel(config: Config, show_progress: bool = True) -> list[dict]:
    # --- setup: the schedule and every check that needs no cluster
    if config.flywheel is None:
        raise ConfigError("this config has no 'flywheel' section (see configs/local.yaml)")
    fw = config.flywheel
    root = output_dir(fw.dir, name="flywheel.dir")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(dump(config))
    schedule = plan(fw.target, fw.iterations, fw.all_stages, fw.fresh_shard_per_stage)
    if fw.data.split.shards < shards_needed(schedule):
        raise ConfigError(f"flywheel: {fw.iterations} iterations of stages {list(fw.all_stages)} need "
                          f"{shards_needed(schedule)} shards; flywheel.data.split.shards is {fw.data.split.shards}")
    registry = Registry(root)
    registry.register(version(fw.target, 0), Path(config.models[fw.target].path), parent=None, stage="base",
                      iteration=0)
    results: dict[str, dict] = {}
    # --- run
    with ray_session(config.ray), stage_serving(config.serve):
        data = st.prepare_data(config, root)
        log.info("data: kept %s of %s, shards %s", data["kept"], data["ingested"], data["shards"])
        versions = [version(fw.target, 0)]  # one per iteration; `evaluated` adds every stage's version
        st.evaluate(config, root, registry, versions[0], [], show_progress)
        evaluated, warning = list(versions), None
        for i in range(1, fw.iterations + 1):
            for stage in (s for s in schedule if s.iteration == i):
                results[stage.name] = run_stage(config, root, registry, schedule, stage, show_progress)
                if fw.eval_every_stage and stage.method != "rm" and stage.output != version(fw.target, i):
                    st.evaluate(config, root, registry, stage.output, list(evaluated), show_progress)
                    evaluated.append(stage.output)
            versions.append(version(fw.target, i))
            st.evaluate(config, root, registry, versions[-1], list(evaluated), show_progress)
            evaluated.append(versions[-1])
            rows = summarise(config, root, schedule, results, versions, evaluated)
            warning = length_hacking(rows, fw.max_length_growth)
            if warning:
                log.warning("%s", warning)
            if warning and fw.stop_on_hacking:
                log.warning("flywheel.stop_on_hacking: stopping after iteration %d of %d", i, fw.iterations)
                break
    # --- results (rows: the last iteration's summary; iterations >= 1)
    table = to_markdown(rows, fw.competitors) + focus_markdown(rows) + (f"\n**Warning:** {warning}\n" if warning else "")
    (root / "summary.json").write_text(json_text({"data": data, "iterations": rows, "length_hacking": warning},
                                                 indent=2) + "\n")
    (root / "summary.md").write_text(f"# Flywheel {root}\n\n{table}")
    if show_progress:
        print(table)
    return rows


def run_stage(config: Config, root: Path, registry: Registry, schedule: list[Stage], stage: Stage,
              show: bool) -> dict:
    """battle → curate → train → register (ppo: battle → ppo → register); each step skipped when its done.json
    exists."""
    previous = [root / "battles" / key for key in dict.fromkeys(s.battle_key for s in schedule
                                                                 if s.iteration == stage.iteration - 1)]
    fought = st.battle(config, root, registry, stage, show, previous)
    if stage.method == "ppo":
        trained = ppo_stage.run(config, root, registry, stage, Path(fought["run_dir"]), show)
        return {"method": "ppo", "battles": fought["battles"], "skipped": None, **trained["metrics"]}
    curated = st.curate_stage(config, root, stage, Path(fought["run_dir"]))
    trained = st.train_stage(config, root, registry, stage)
    return {"method": stage.method, "battles": fought["battles"], **{k: curated[k] for k in ("sft", "dpo", "rm")},
            "skipped": trained.get("skipped"), **trained["metrics"]}


def eval_battles(root: Path, versions: list[str]) -> list[BattleRow]:
    out: list[BattleRow] = []
    for v in versions:
        out.extend(read_battles(str(root / "eval" / v)).battles)
    return out


def summarise(config: Config, root: Path, schedule: list[Stage], results: dict[str, dict],
              versions: list[str], evaluated: list[str]) -> list[dict]:
    """A row per iteration; each stage carries its version's measures where it was rated (eval_every_stage)."""
    fw = config.flywheel
    battles = eval_battles(root, evaluated)
    ratings = {r.model: r for r in bradley_terry.fit_battles(battles, bootstrap_rounds=config.rating.bootstrap_rounds,
                                                             seed=config.rating.seed, scale=config.rating.scale,
                                                             base=config.rating.base)} if battles else {}
    lc_reference = fw.lc_reference or fw.competitors[0]

    def measures(v: str) -> dict:
        return version_measures(v, ratings.get(v), battles, fw.competitors, base=versions[0],
                                lc_reference=lc_reference, seed=config.rating.seed)
    rows = []
    for i, v in enumerate(versions):
        stages = [{**results[s.name], "version": s.output,
                   "measures": measures(s.output) if s.output in evaluated and s.output != v else None}
                  for s in schedule if s.iteration == i]
        rows.append({**iteration_row(i, v, stages, ratings.get(v), battles, fw.competitors, base=versions[0],
                                     lc_reference=lc_reference, seed=config.rating.seed),
                     "focus": focus.report(config, root, [s for s in schedule if s.iteration == i]) if i else None})
    return rows
