"""The function every Ray Train worker runs: TRL's SFT, DPO or reward trainer on the curated Parquet, which
arrives through Ray Data (the dataset shard "train": every worker gets all rows, and the trainer's sampler
shards them by rank, see arena_ray.train.run.torch_trainer).

Ray's TorchTrainer has already set up the process group (gloo on CPU, NCCL on GPUs) and the environment that
transformers reads, so the TRL trainer runs data-parallel (or under DeepSpeed ZeRO when a config is given)
without further glue. A CPU run's workers see no GPU (their runtime_env, arena_ray.train.placement) and
transformers is told use_cpu. Rank 0 reports the saved HF folder (safetensors) as the Ray Train checkpoint.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from arena_ray.records.tables import json_text


def _training_args(cls, train, scratch: str, rank: int, extra: dict):
    return cls(
        output_dir=scratch, report_to="none", save_strategy="no", logging_steps=train.logging_steps,
        learning_rate=train.learning_rate, num_train_epochs=train.epochs, max_steps=train.max_steps,
        per_device_train_batch_size=train.per_device_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps, warmup_steps=train.warmup,
        lr_scheduler_type=train.lr_scheduler_type, weight_decay=train.weight_decay, seed=train.seed,
        bf16=train.bf16, use_cpu=not train.use_gpu, gradient_checkpointing=train.gradient_checkpointing,
        deepspeed=train.deepspeed, disable_tqdm=rank != 0, max_length=train.max_length,
        dataloader_num_workers=0, **extra)


def shard_rows(shard) -> list[dict]:
    """A Ray Data iterator's rows, in order, as Python values (what pyarrow's to_pylist gives the driver)."""
    return [row for batch in shard.iter_batches(batch_format="pyarrow", batch_size=None) for row in batch.to_pylist()]


def build_trainer(method: str, base: str, rows: list[dict], train, scratch: str, rank: int):
    import datasets
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = datasets.Dataset.from_list(rows)
    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        args = _training_args(SFTConfig, train, scratch, rank, {"completion_only_loss": True})
        model = AutoModelForCausalLM.from_pretrained(base)
        return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer), tokenizer
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = _training_args(DPOConfig, train, scratch, rank, {"beta": train.beta, "loss_type": [train.loss_type]})
        model = AutoModelForCausalLM.from_pretrained(base)
        return DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer), tokenizer
    from trl import RewardConfig, RewardTrainer

    args = _training_args(RewardConfig, train, scratch, rank, {})
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    return RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer), tokenizer


def metrics_callback(run: str, method: str):
    """A transformers callback that mirrors training logs into Ray metrics (dashboard, Prometheus)."""
    from ray.util.metrics import Gauge
    from transformers import TrainerCallback

    keys = ("run", "method")
    gauges = {"loss": Gauge("arena_train_loss", "training loss", tag_keys=keys),
              "grad_norm": Gauge("arena_train_grad_norm", "gradient norm", tag_keys=keys),
              "rewards/margins": Gauge("arena_train_dpo_margin", "DPO implicit reward margin", tag_keys=keys),
              "train_samples_per_second": Gauge("arena_train_samples_per_s", "training throughput", tag_keys=keys),
              "step": Gauge("arena_train_step", "optimiser step", tag_keys=keys)}
    tags = {"run": run, "method": method}

    class RayMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            for key, value in {**(logs or {}), "step": state.global_step}.items():
                if key in gauges and isinstance(value, (int, float)):
                    gauges[key].set(float(value), tags=tags)

    return RayMetrics()


def step_times(timeline: dict):
    """A transformers callback that stamps (time.time()) when training began and when its first and last optimiser
    steps ended, and notes the median step's seconds: the steps' own speed apart from start-up, and apart from
    other work that slowed a few steps (benchmarks/train_throughput.py)."""
    from transformers import TrainerCallback

    ends: list[float] = []

    class StepTimes(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            timeline["train_begin"] = time.time()

        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.time())
            timeline.setdefault("first_step", ends[0])
            timeline["last_step"] = ends[-1]

        def on_train_end(self, args, state, control, **kwargs):
            if len(ends) > 1:
                timeline["median_step_s"] = statistics.median(b - a for a, b in zip(ends, ends[1:]))

    return StepTimes()


def summarise(log_history: list[dict]) -> dict:
    """First/last training loss (and DPO reward margin / RM accuracy) from transformers' log history."""
    steps = [e for e in log_history if "loss" in e]
    out: dict = {"steps": max((e.get("step", 0) for e in log_history), default=0), "logged_steps": len(steps)}
    for key, name in (("loss", "loss"), ("rewards/margins", "margin"), ("accuracy", "accuracy")):
        values = [e[key] for e in steps if key in e]
        if values:
            out[f"{name}_first"], out[f"{name}_last"] = float(values[0]), float(values[-1])
    tokens = [e["num_tokens"] for e in steps if "num_tokens" in e]  # TRL's count, all workers together
    if tokens:
        out["tokens"] = int(tokens[-1])
    runtime = [e["train_runtime"] for e in log_history if "train_runtime" in e]
    if runtime:
        out["runtime_s"] = round(float(runtime[-1]), 1)
    return out


def train_loop(config: dict) -> None:
    # When each stage ended (time.time(), rank 0's in metrics.json): where a run's start-up went.
    timeline = {"worker_start": time.time()}
    if not config["train"].get("use_gpu"):
        # The worker's runtime_env hides the GPUs already; this covers a worker started without it, as long
        # as nothing in the process has initialised CUDA yet.
        from arena_ray.train.placement import cpu_worker_env

        os.environ.update(cpu_worker_env())
    import ray.train
    from ray.train.huggingface.transformers import prepare_trainer

    from arena_ray.settings.train import TrainConfig
    from arena_ray.train.formats import rows_for

    rank = ray.train.get_context().get_world_rank()
    train = TrainConfig.model_validate(config["train"])
    timeline["imported"] = time.time()
    # The rows the driver checked, converted the same way (formats): the trainer sees what it saw before.
    rows = rows_for(config["method"], shard_rows(ray.train.get_dataset_shard("train")), config["source"],
                    config["completion_template"])
    timeline["data_ready"] = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        trainer, tokenizer = build_trainer(config["method"], config["base"], rows, train, scratch, rank)
        timeline["trainer_ready"] = time.time()
        if rank == 0:
            trainer.add_callback(metrics_callback(config.get("run", ""), config["method"]))
            trainer.add_callback(step_times(timeline))
        trainer = prepare_trainer(trainer)
        trainer.train()
        metrics = summarise(trainer.state.log_history)
        metrics["examples"] = len(rows)
        out = Path(scratch) / "final"
        trainer.save_model(str(out))  # collective under ZeRO-3 (gathers the shards); writes on rank 0 only
        metrics["timeline"] = {**timeline, "saved": time.time()}
        if rank == 0:
            # transformers pickles its arguments next to the weights; checkpoints here hold no pickle.
            (out / "training_args.bin").unlink(missing_ok=True)
            tokenizer.save_pretrained(str(out))
            (out / "training_log.json").write_text(json_text(trainer.state.log_history, indent=1) + "\n")
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out)))
        else:
            ray.train.report(metrics)
