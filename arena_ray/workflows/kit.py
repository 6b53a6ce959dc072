"""The stage kit the flywheel and the self-rewarding loop share: run a stage once (a done.json marker), name
versions (train.registry.version), build the arena of one stage, record a model's answers for replay, train a version and register it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Optional

from arena_ray.arena.ledger import Ledger
from arena_ray.records.tables import json_text
from arena_ray.serving.deployments import release
from arena_ray.settings import Config, from_dict
from arena_ray.settings.train import Method, TrainConfig
from arena_ray.train.registry import Registry
from arena_ray.train.run import NoTrainingData, train

log = logging.getLogger(__name__)


def once(stage_dir: Path, work: Callable[[], dict]) -> dict:
    """Run `work` unless stage_dir/done.json says it already finished; record its result there."""
    marker = stage_dir / "done.json"
    if marker.exists():
        return json.loads(marker.read_text())
    stage_dir.mkdir(parents=True, exist_ok=True)
    result = work()
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json_text(result, indent=2, default=str) + "\n")
    tmp.replace(marker)
    return result


def arena_config(config: Config, run_dir: Path, instructions: Path, limit: Optional[int], target: str,
                 models: dict[str, dict]) -> Config:
    """An arena of `target` against every other entry of `models`, judged by the config's judge, scheduled by
    the config's arena settings (or their defaults)."""
    data = config.model_dump(mode="json", exclude={"flywheel", "self_reward", "ppo"})
    judge = config.judge.model
    data["run_dir"] = str(run_dir)
    data["instructions"] = {"path": str(instructions), "limit": limit}
    data["models"] = {**models, judge: data["models"][judge]}
    data["arena"] = {**(data.get("arena") or {}), "competitors": list(models), "pairing": "target_vs_all",
                     "target": target}
    return from_dict(data, source=f"arena of {run_dir}")


def record_answers(run_dir: Path, model: str, out: Path) -> None:
    """`model`'s answers in an arena run, as a replay engine's answers file (question_id, text)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for g in Ledger(run_dir).generations():
            if g.model == model and not g.error:
                fh.write(json.dumps({"question_id": g.instruction_id, "text": g.text}) + "\n")
    tmp.replace(out)


def train_version(config: Config, registry: Registry, *, method: Method, base: str, output: str, data: Path,
                  stage_dir: Path, settings: TrainConfig, iteration: int, model: str, storage: Path) -> dict:
    """Train `base` into `output` on `data` (once), register it, and return the result. When the data holds no
    usable example the stage is skipped with a warning and `output` is `base`'s weights under the new name."""
    entry = registry.get(base)
    free_gpus_for(settings)
    served = config.models[model]
    template = served.completion_template if served.prompt_format == "completion" else None

    def work() -> dict:
        try:
            result = train(method, Path(entry.path), data, stage_dir / "model", settings,
                           completion_template=template, storage=storage)
        except NoTrainingData as err:
            log.warning("%s: %s — %s skipped, %s carries on unchanged", stage_dir.name, err, method, base)
            return {"skipped": str(err), "path": entry.path, "metrics": {}}
        return {"path": str(result.path), "metrics": result.metrics}
    result = once(stage_dir / "train", work)
    registry.register(output, Path(result["path"]), parent=base, stage=method, iteration=iteration,
                      metrics=result["metrics"])
    return result


def free_gpus_for(settings: TrainConfig) -> None:
    """Models kept served between stages hold their GPUs; a GPU training that would not find enough free ones
    gets this workflow's applications taken down first (they start again when a later stage needs them)."""
    if not settings.use_gpu:
        return
    import ray

    if ray.is_initialized() and ray.available_resources().get("GPU", 0) < settings.num_workers:
        log.info("freeing the serving GPUs for training (%d workers)", settings.num_workers)
        release()
