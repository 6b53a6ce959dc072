"""Train one model on curated data with Ray Train's TorchTrainer: check inputs → fit → HF folder + metrics.

The caller holds the Ray session. The result lands atomically in `out` (safetensors, tokenizer,
training_log.json, metrics.json); an existing complete `out` is returned as is (resume).
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq

from arena_ray.errors import InputError, TrainingError
from arena_ray.records.tables import json_text
from arena_ray.settings.train import Method, TrainConfig
from arena_ray.train import formats
from arena_ray.train.placement import check_cluster, cpu_worker_env
from arena_ray.train.registry import weight_files

log = logging.getLogger(__name__)


class NoTrainingData(InputError):
    """The curated file has no rows: the caller decides to skip the stage (with a warning) or stop."""


@dataclass(frozen=True)
class TrainResult:
    method: str
    path: Path
    metrics: dict


def load_rows(method: Method, data: Path, completion_template: Optional[str]) -> list[dict]:
    if not data.is_file():
        raise InputError(f"training data not found: {data}")
    try:
        rows = pq.read_table(data).to_pylist()
    except Exception as err:
        raise InputError(f"{data}: unreadable Parquet ({type(err).__name__}: {err})") from None
    if not rows:
        raise NoTrainingData(f"{data}: no {method} examples")
    return formats.rows_for(method, rows, str(data), completion_template)


def _length(tokenizer, prompt, completion=None) -> int:
    if isinstance(prompt, list):  # conversational
        ids = tokenizer.apply_chat_template(prompt + (completion or []), add_generation_prompt=completion is None,
                                            tokenize=True, return_dict=False)
        return len(ids)
    return len(tokenizer(prompt + (completion or ""))["input_ids"])


def check_lengths(method: Method, rows: list[dict], base: Path, max_length: int, source: Path) -> None:
    """TRL's DPO trainer drops examples whose prompt alone fills max_length, its reward trainer those whose
    prompt + answer exceeds it (SFT truncates instead). Say so here rather than fail inside a worker."""
    if method == "sft":
        return
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if method == "dpo":
        dropped = sum(_length(tokenizer, r["prompt"]) >= max_length for r in rows)
        what = "prompts of >= max_length"
    else:
        dropped = sum(max(_length(tokenizer, r["prompt"], r["chosen"]), _length(tokenizer, r["prompt"], r["rejected"]))
                      > max_length for r in rows)
        what = "prompt + answer > max_length"
    if dropped == len(rows):
        raise NoTrainingData(f"{source}: all {len(rows)} {method} examples have {what} ({max_length}) tokens, "
                             f"which the trainer drops; raise train.{method}.max_length")
    if dropped:
        log.warning("%s: %d of %d %s examples have %s (%d) tokens and are dropped by the trainer",
                    source, dropped, len(rows), method, what, max_length)


def build_cpu_comm_op() -> None:
    """DeepSpeed on CPU needs its shared-memory collective op, compiled on first use into one cache folder.
    Compiled here, once, before the workers start: two ranks compiling it at once can leave neither a loadable
    library ("deepspeed_shm_comm.so: cannot open shared object file")."""
    from deepspeed.ops.op_builder.cpu.comm import ShareMemCommBuilder

    ShareMemCommBuilder().load(verbose=False)


def placement_needs(method: Method, settings: TrainConfig) -> list[tuple[dict[str, float], str]]:
    """What the workers take all at once, each with the settings that ask for it."""
    n = settings.num_workers
    needs = [({"CPU": n * settings.cpus_per_worker},
              f"train.{method}: num_workers x cpus_per_worker ({n} x {settings.cpus_per_worker:g})")]
    if settings.use_gpu:
        needs.insert(0, ({"GPU": n}, f"train.{method}.use_gpu: true (num_workers: {n}, one GPU each)"))
    return needs


def check_placement(method: Method, settings: TrainConfig) -> None:
    """Fail now, naming the setting, where the workers could never be placed and Ray would wait for them
    forever: use_gpu on a cluster without enough GPUs, or more worker CPUs than it has."""
    for needs, setting in placement_needs(method, settings):
        check_cluster(needs, setting)


def torch_trainer(method: Method, base: Path, rows: list[dict], out: Path, settings: TrainConfig, storage: Path):
    """The TorchTrainer of one run. A CPU run stays on CPU on a GPU host too: gloo, and workers that see no
    GPU (see arena_ray.train.placement); transformers is told use_cpu in the worker."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from arena_ray.train.worker import train_loop

    return TorchTrainer(
        train_loop,
        train_loop_config={"method": method, "base": str(Path(base).resolve()), "rows": rows, "run": out.name,
                           "train": settings.model_dump(mode="json")},
        scaling_config=ScalingConfig(num_workers=settings.num_workers, use_gpu=settings.use_gpu,
                                     resources_per_worker={"CPU": settings.cpus_per_worker}),
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
        run_config=RunConfig(name=f"{out.parent.name}-{out.name}", storage_path=str(storage),
                             worker_runtime_env={} if settings.use_gpu else {"env_vars": cpu_worker_env()}),
    )


def train(method: Method, base: Path, data: Path, out: Path, settings: TrainConfig, *,
          completion_template: Optional[str] = None, storage: Optional[Path] = None) -> TrainResult:
    out = Path(out)
    if (out / "metrics.json").is_file():
        log.info("%s: already trained, reusing", out)
        return TrainResult(method, out, json.loads((out / "metrics.json").read_text()))
    weight_files(Path(base))  # a missing shard or pickle weights fail here, not inside a worker
    rows = load_rows(method, Path(data), completion_template)
    check_lengths(method, rows, Path(base), settings.max_length, Path(data))
    if settings.deepspeed and not Path(settings.deepspeed).is_file():
        raise InputError(f"deepspeed config not found: {settings.deepspeed}")
    if settings.deepspeed and not settings.use_gpu:
        build_cpu_comm_op()

    # Inputs first (cheap, no cluster needed), then the cluster: before Ray Train would wait for workers forever.
    check_placement(method, settings)
    storage = Path(storage or out.parent / "ray_train").resolve()
    result = torch_trainer(method, Path(base), rows, out, settings, storage).fit()
    if result.checkpoint is None:
        raise TrainingError(f"training {out.name}: Ray Train finished without a checkpoint ({result.error})")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    result.checkpoint.to_directory(str(tmp))
    metrics = {k: v for k, v in result.metrics.items() if not k.startswith("_")}
    (tmp / "metrics.json").write_text(json_text(metrics, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return TrainResult(method, out, metrics)
