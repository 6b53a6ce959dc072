"""The flywheel's stages. Each writes its outputs, then a `done.json` with its result; a re-run finds that
marker and returns the recorded result without redoing the work (arena runs also resume from their ledger).

Layout under flywheel.dir:
  data/                    the instruction pipeline's output (shards/D*.parquet, holdout.parquet)
  battles/<D_k-version>/   arena run: one version vs the competitors on one shard
  iter<i>-<method>/        curated/ (sft, dpo, rm Parquet) and model/ (the trained HF folder); a ppo stage:
                           reference/<competitor>.jsonl (the pairwise reward's answers) and ppo/ (arena-ray ppo's run)
  eval/<version>/          arena run on the offline test set; eval/answers/<version>.jsonl for replays
  registry.jsonl           every version; summary.json / summary.md at the end
"""
from __future__ import annotations

import logging
from pathlib import Path

from arena_ray.arena.metrics import ArenaMetrics
from arena_ray.data.curate import Thresholds
from arena_ray.data.ingest import load_instructions
from arena_ray.errors import InputError
from arena_ray.settings import Config
from arena_ray.settings.data import DataJob
from arena_ray.train.registry import Registry
from arena_ray.workflows.arena import run_arena
from arena_ray.workflows.curate import export
from arena_ray.workflows.flywheel import focus
from arena_ray.workflows.flywheel.plan import Stage
from arena_ray.workflows.kit import arena_config, once, record_answers, train_version
from arena_ray.workflows.prepare import run_data

log = logging.getLogger(__name__)


def prepare_data(config: Config, root: Path) -> dict:
    fw = config.flywheel
    job = DataJob(out_dir=str(root / "data"), ray=config.ray, **fw.data.model_dump())
    return once(root / "data", lambda: run_data(job))


def shard_path(root: Path, shard: int) -> Path:
    path = root / "data" / "shards" / f"D{shard}.parquet"
    if not path.exists():
        raise InputError(f"{path}: shard D{shard} does not exist; the flywheel needs more shards "
                         f"(flywheel.data.split.shards)")
    if not load_instructions(path, limit=1):  # raises InputError on an empty shard
        raise InputError(f"{path}: shard D{shard} is empty")
    return path


def version_model(config: Config, registry: Registry, name: str) -> dict:
    """The model entry serving a registered version: the target's entry, its path swapped, overrides merged."""
    entry = registered(registry, name)
    base = config.models[config.flywheel.target].model_dump(mode="json")
    return {**base, **config.flywheel.version_overrides, "path": entry.path}


def battle(config: Config, root: Path, registry: Registry, stage: Stage, show: bool,
           previous: list[Path] = ()) -> dict:
    """The stage's input version against the competitors on its shard (with focus and `previous` iterations'
    battle runs: on the shard's weakest categories first)."""
    fw = config.flywheel
    run_dir = root / "battles" / stage.battle_key
    models = {stage.battle_model: version_model(config, registry, stage.battle_model),
              **{c: config.models[c].model_dump(mode="json") for c in fw.competitors}}
    instructions, limit = shard_path(root, stage.shard), fw.instructions_per_shard
    if fw.focus == "weakest" and previous:
        instructions = focus.instructions(config, root / "battles" / f"{stage.battle_key}-focus", instructions,
                                          previous)
        limit = None
    cfg = arena_config(config, run_dir, instructions, limit, stage.battle_model, models)

    def work() -> dict:
        result = run_arena(cfg, show_progress=show, between_stages=True)
        return {"run_dir": str(run_dir), "battles": len(result.tally.battles),
                "failed_battles": result.tally.failed_battles, "shard": stage.shard}
    return once(run_dir, work)


def curate_stage(config: Config, root: Path, stage: Stage, battle_dir: Path) -> dict:
    t = config.flywheel.thresholds
    out = root / stage.name / "curated"
    return once(out, lambda: export(battle_dir, stage.battle_model, out, Thresholds(t.sft_gap, t.dpo_gap, t.rm_gap)))


def train_stage(config: Config, root: Path, registry: Registry, stage: Stage) -> dict:
    """Train, or — when curation left no data for this method — skip with a warning: a policy stage then
    passes its input version on unchanged (registered under the output name with the same weights)."""
    fw = config.flywheel
    result = train_version(config, registry, method=stage.method, base=stage.battle_model, output=stage.output,
                           data=root / stage.name / "curated" / f"{stage.method}.parquet",
                           stage_dir=root / stage.name, settings=fw.train.of(stage.method),
                           iteration=stage.iteration, model=fw.target, storage=root / "ray_train")
    ArenaMetrics(root.name).set("arena_weight_version", registry.get(stage.output).version, role=stage.output)
    return result


def eval_answers_path(root: Path, name: str) -> Path:
    return root / "eval" / "answers" / f"{name}.jsonl"


def evaluate(config: Config, root: Path, registry: Registry, name: str, earlier: list[str], show: bool) -> dict:
    """`name` against the competitors and every earlier version on the offline test set. Earlier versions
    answer from their recorded eval answers (replay), so nothing is served or generated twice."""
    fw = config.flywheel
    run_dir = root / "eval" / name
    instructions = Path(fw.eval_instructions) if fw.eval_instructions else root / "data" / "holdout.parquet"
    models = {name: version_model(config, registry, name),
              **{c: config.models[c].model_dump(mode="json") for c in fw.competitors},
              **{v: {"engine": "replay", "path": str(eval_answers_path(root, v)), "num_cpus": 0.1} for v in earlier}}
    cfg = arena_config(config, run_dir, instructions, fw.eval_limit, name, models)

    def work() -> dict:
        result = run_arena(cfg, show_progress=show, between_stages=True)
        record_answers(run_dir, name, eval_answers_path(root, name))
        return {"run_dir": str(run_dir), "battles": len(result.tally.battles)}
    return once(run_dir, work)


def registered(registry: Registry, name: str):
    entry = registry.get(name)
    if entry is None:
        raise InputError(f"flywheel: version '{name}' is not registered in {registry.path}")
    return entry

