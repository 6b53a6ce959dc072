"""Train one model on curated data with Ray Train's TorchTrainer: check inputs → the file into Ray's object store
(Ray Data, for every worker) → fit → HF folder + metrics.

The caller holds the Ray session. The result lands atomically in `out` (safetensors, tokenizer,
training_log.json, metrics.json); an existing complete `out` is returned as is (resume).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pyarrow.parquet as pq

from arena_ray.errors import InputError, TrainingError
from arena_ray.records.tables import json_text
from arena_ray.settings.train import Method, TrainConfig
from arena_ray.train import formats
from arena_ray.train.placement import check_cluster, cpu_worker_env
from arena_ray.train.registry import weight_files

log = logging.getLogger(__name__)

HEALTH_CHECK_INTERVAL = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


class NoTrainingData(InputError):
    """The curated file has no rows: the caller decides to skip the stage (with a warning) or stop."""


@dataclass(frozen=True)
class TrainResult:
    method: str
    path: Path
    metrics: dict


BATCH_ROWS = 4096  # rows the driver checks at a time: it never holds a whole curated file


def _parquet_rows(data: Path) -> Iterator[list[dict]]:
    try:
        for batch in pq.ParquetFile(data).iter_batches(batch_size=BATCH_ROWS):
            yield batch.to_pylist()
    except Exception as err:
        raise InputError(f"{data}: unreadable Parquet ({type(err).__name__}: {err})") from None


def read_examples(method: Method, data: Path, completion_template: Optional[str]) -> Iterator[list[dict]]:
    """The curated file as the rows TRL's trainer reads (formats), a batch at a time; a bad row is named by its
    index in the file."""
    if not data.is_file():
        raise InputError(f"training data not found: {data}")
    make = formats.sft_row if method == "sft" else formats.preference_row
    start = 0
    for rows in _parquet_rows(data):
        yield [make(r, f"{data}[row {start + i}]", completion_template) for i, r in enumerate(rows)]
        start += len(rows)


def _length(tokenizer, prompt, completion=None) -> int:
    if isinstance(prompt, list):  # conversational
        ids = tokenizer.apply_chat_template(prompt + (completion or []), add_generation_prompt=completion is None,
                                            tokenize=True, return_dict=False)
        return len(ids)
    return len(tokenizer(prompt + (completion or ""))["input_ids"])


def check_examples(method: Method, data: Path, base: Path, max_length: int, completion_template: Optional[str]) -> int:
    """Every row of the curated file converts to a trainer row (formats), and how many the trainer would drop:
    TRL's DPO trainer drops examples whose prompt alone fills max_length, its reward trainer those whose
    prompt + answer exceeds it (SFT truncates instead). Said here rather than failing inside a worker.
    Returns the number of examples."""
    tokenizer = None
    if method != "sft":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base)
    total = dropped = 0
    for rows in read_examples(method, data, completion_template):
        total += len(rows)
        if method == "dpo":
            dropped += sum(_length(tokenizer, r["prompt"]) >= max_length for r in rows)
        elif method == "rm":
            dropped += sum(max(_length(tokenizer, r["prompt"], r["chosen"]),
                               _length(tokenizer, r["prompt"], r["rejected"])) > max_length for r in rows)
    if not total:
        raise NoTrainingData(f"{data}: no {method} examples")
    what = "prompts of >= max_length" if method == "dpo" else "prompt + answer > max_length"
    if dropped == total:
        raise NoTrainingData(f"{data}: all {total} {method} examples have {what} ({max_length}) tokens, "
                             f"which the trainer drops; raise train.{method}.max_length")
    if dropped:
        log.warning("%s: %d of %d %s examples have %s (%d) tokens and are dropped by the trainer",
                    data, dropped, total, method, what, max_length)
    return total


DRIVER_READ_BYTES = 64 << 20
"""A curated file up to this size (on disk) is read by the driver and put into the object store as one block (0.3 s
the first time in a process, then 0.02 s); a larger one is read by Ray Data's tasks, so the driver never holds it
(their start-up: 1.2 s, 3.4 s in a new session, on 2 cores)."""


def curated_dataset(data: Path):
    """The curated file as a Ray Dataset in the object store, in file order. Read before the workers start: Ray
    Train leaves Ray Data only the CPUs its workers do not reserve, and a read started inside a worker that
    reserved all of them waits forever for one."""
    import ray.data

    if data.stat().st_size <= DRIVER_READ_BYTES:
        # One block, its metadata computed here (from_blocks, a Ray Data DeveloperAPI): from_arrow asks a task for
        # it, and a worker process to start for that costs ~1 s.
        dataset = ray.data.from_blocks([pq.ParquetFile(data).read()])
    else:
        dataset = ray.data.read_parquet(str(data.resolve()), partitioning=None)
        dataset.context.execution_options.preserve_order = True
    dataset.context.enable_progress_bars = False  # a worker's bar would be redrawn in the log until it ends
    return dataset.materialize()


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
    needs += [({name: n * amount}, f"train.{method}.worker_resources.{name} ({n} workers x {amount:g})")
              for name, amount in settings.worker_resources.items()]
    return needs


def check_placement(method: Method, settings: TrainConfig) -> None:
    """Fail now, naming the setting, where the workers could never be placed and Ray would wait for them
    forever: use_gpu on a cluster without enough GPUs, or more worker CPUs than it has."""
    for needs, setting in placement_needs(method, settings):
        check_cluster(needs, setting)


def torch_trainer(method: Method, base: Path, dataset, out: Path, settings: TrainConfig, storage: Path, *,
                  source: str = "", completion_template: Optional[str] = None):
    """The TorchTrainer of one run. A CPU run stays on CPU on a GPU host too: gloo, and workers that see no
    GPU (see arena_ray.train.placement); transformers is told use_cpu in the worker.

    `dataset` (curated_dataset) reaches every worker whole, in file order (nothing split by Ray): the trainer's
    sampler shards it by rank as it always did, so each step sees the examples it saw with the rows handed over
    in the config. A split by Ray would be split again by accelerate's sampler, or need it bypassed, and would
    change which examples form each step (and drop rows to make the shards equal)."""
    from ray.data import DataContext
    from ray.train import DataConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from arena_ray.train.worker import train_loop

    # Ray Train's controller looks at the workers every 2 s by default: a finished run was seen late (3.9-4.9 s
    # from the last step to train()'s return, 1.0-1.2 s at 0.5; benchmarks/train_throughput.py). A poll is one
    # RPC per worker, and a missed one is no failure.
    os.environ.setdefault(HEALTH_CHECK_INTERVAL, "0.5")  # read in fit(), passed on to the controller
    in_order = copy.deepcopy(DataContext.get_current().execution_options)  # Ray Train's default ingest options,
    in_order.preserve_order = True                                         # and the file's order kept

    return TorchTrainer(
        train_loop,
        train_loop_config={"method": method, "base": str(Path(base).resolve()), "source": source,
                           "completion_template": completion_template, "run": out.name,
                           "train": settings.model_dump(mode="json")},
        datasets={"train": dataset},
        dataset_config=DataConfig(datasets_to_split=[], execution_options=in_order),
        scaling_config=ScalingConfig(num_workers=settings.num_workers, use_gpu=settings.use_gpu,
                                     resources_per_worker={"CPU": settings.cpus_per_worker,
                                                           **settings.worker_resources},
                                     placement_strategy=settings.placement_strategy),
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
        run_config=RunConfig(name=f"{out.parent.name}-{out.name}", storage_path=str(storage),
                             worker_runtime_env={} if settings.use_gpu else {"env_vars": cpu_worker_env()}),
    )


def take_checkpoint(checkpoint, to: Path) -> None:
    """Ray Train's copy of the final HF folder, moved to `to` where Ray's storage is a local folder on the same
    filesystem (the default, beside `out`): the weights are not written a third time. Else copied."""
    from pyarrow.fs import LocalFileSystem

    if isinstance(checkpoint.filesystem, LocalFileSystem):
        try:
            Path(checkpoint.path).rename(to)
            return
        except OSError:  # another filesystem
            pass
    checkpoint.to_directory(str(to))


def train(method: Method, base: Path, data: Path, out: Path, settings: TrainConfig, *,
          completion_template: Optional[str] = None, storage: Optional[Path] = None) -> TrainResult:
    out = Path(out)
    if (out / "metrics.json").is_file():
        log.info("%s: already trained, reusing", out)
        return TrainResult(method, out, json.loads((out / "metrics.json").read_text()))
    weight_files(Path(base))  # a missing shard or pickle weights fail here, not inside a worker
    check_examples(method, Path(data), Path(base), settings.max_length, completion_template)
    if settings.deepspeed and not Path(settings.deepspeed).is_file():
        raise InputError(f"deepspeed config not found: {settings.deepspeed}")
    if settings.deepspeed and not settings.use_gpu:
        build_cpu_comm_op()

    # Inputs first (cheap, no cluster needed), then the cluster: before Ray Train would wait for workers forever.
    import ray

    if not ray.is_initialized():  # called outside a workflow: connect as TorchTrainer.fit would ($RAY_ADDRESS)
        ray.init()
    check_placement(method, settings)
    storage = Path(storage or out.parent / "ray_train").resolve()
    dataset = curated_dataset(Path(data))
    result = torch_trainer(method, Path(base), dataset, out, settings, storage, source=str(data),
                           completion_template=completion_template).fit()
    if result.checkpoint is None:
        raise TrainingError(f"training {out.name}: Ray Train finished without a checkpoint ({result.error})")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    take_checkpoint(result.checkpoint, tmp)
    metrics = {k: v for k, v in result.metrics.items() if not k.startswith("_")}
    (tmp / "metrics.json").write_text(json_text(metrics, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return TrainResult(method, out, metrics)
