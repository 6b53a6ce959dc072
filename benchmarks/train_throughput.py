"""Training speed of SFT through Ray Train (`arena_ray.train.run.train`) vs bare TRL in this process, same run.

Bare: TRL's SFTTrainer called directly in this process, on rows read from the curated file.
Ray: `run.train` on a local Ray (TorchTrainer, data through Ray Data, TRL's SFTTrainer in each worker).
Both train the same model on the same curated file (arena-hard prompts, GPT-4 answers) with the same TrainConfig:
steps, examples per step (the bare run takes all workers' batches in one), max length, learning rate, seed.
Printed per path: training tokens/s over steps 2..N (TRL's `num_tokens`, all workers), set-up (the call until the
first optimiser step has ended), wall (the call until it returns), and the ratios (targets: tokens/s >= 0.95x,
set-up <= 15 s over bare's). The Ray path's set-up is broken down from the worker's timeline (metrics.json).

    .venv/bin/python benchmarks/train_throughput.py [--steps 40] [--batch 4] [--seq-len 256] [--workers 1]
        [--model tiny | DIR] [--gpu]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SMOLLM2 = Path(__file__).resolve().parents[1] / ".models" / "SmolLM2-135M-Instruct"


def tiny_model(out: Path) -> Path:
    """The tiny random Llama the tests build (2 layers, 256 wide, SmolLM2's tokenizer)."""
    from arena_ray.workflows.models import build_tiny, prepare

    tokenizer = SMOLLM2 if (SMOLLM2 / "config.json").exists() else prepare("SmolLM2-135M-Instruct", out / "models")
    return build_tiny(out / "tiny-llama", tokenizer)


def curated_sft(out: Path, examples: int) -> Path:
    """An SFT file in the shape `arena-ray curate` writes: arena-hard prompts with GPT-4's answers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from arena_ray.data.answers import load_answers
    from arena_ray.data.ingest import load_instructions

    answers = load_answers(SHARED / "answers" / "arena_hard_v0.1" / "gpt-4-0314.jsonl")
    prompts = [p for p in load_instructions(SHARED / "instructions" / "arena_hard_v0.1.jsonl")
               if p.instruction_id in answers][:examples]
    path = out / "sft.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"messages": [{"role": "user", "content": p.text}, {"role": "assistant", "content": answers[p.instruction_id]}],
         "instruction_id": p.instruction_id} for p in prompts]), path)
    return path


def speed(log_history: list[dict], timeline: dict, start: float, end: float) -> dict:
    """tokens/s over steps 2..N (the first step carries one-off work: dataloader, DDP buckets, lazy inits)."""
    tokens = [e["num_tokens"] for e in log_history if "num_tokens" in e and "loss" in e]
    steps_s = timeline["last_step"] - timeline["first_step"]
    return {"tokens_per_s": (tokens[-1] - tokens[0]) / steps_s, "setup_s": timeline["first_step"] - start,
            "wall_s": end - start, "steps_s": steps_s, "tokens": tokens[-1],
            "loss_last": [e["loss"] for e in log_history if "loss" in e][-1]}


def bare(base: Path, data: Path, settings, scratch: Path) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from arena_ray.train.run import read_examples
    from arena_ray.train.worker import _training_args, step_times

    if not settings.use_gpu:
        torch.set_num_threads(int(settings.cpus_per_worker))  # what Ray gives a worker (OMP_NUM_THREADS)
    timeline: dict = {}
    start = time.time()
    tokenizer = AutoTokenizer.from_pretrained(base)
    args = _training_args(SFTConfig, settings, str(scratch), 0, {"completion_only_loss": True})
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base), args=args, processing_class=tokenizer,
                         train_dataset=datasets.Dataset.from_list(
                             [row for rows in read_examples("sft", data, None) for row in rows]),
                         callbacks=[step_times(timeline)])
    trainer.train()
    return speed(trainer.state.log_history, timeline, start, time.time())


def through_ray(base: Path, data: Path, settings, out: Path) -> dict:
    import json

    from arena_ray.train import run

    fit_at: dict = {}
    make = run.torch_trainer

    def stamped(*args, **kwargs):  # when the driver hands over to Ray Train, and when it gets the result back
        trainer = make(*args, **kwargs)
        fit = trainer.fit

        def timed_fit():
            fit_at["fit"] = time.time()
            try:
                return fit()
            finally:
                fit_at["fit_returned"] = time.time()
        trainer.fit = timed_fit
        return trainer

    run.torch_trainer = stamped
    try:
        start = time.time()
        result = run.train("sft", base, data, out, settings)
        end = time.time()
    finally:
        run.torch_trainer = make
    log_history = json.loads((result.path / "training_log.json").read_text())
    timeline = {**result.metrics["timeline"], **fit_at}
    return {**speed(log_history, timeline, start, end), "timeline": timeline, "start": start, "end": end}


def breakdown(r: dict) -> list[tuple[str, float]]:
    t, marks = r["timeline"], [("start", "driver: read + check the data"), ("fit", "Ray Train: controller, worker "
             "group, process group, until the train function runs"), ("worker_start", "worker: imports, data, model "
             "load, TRL tokenisation"), ("trainer_ready", "TRL/accelerate: prepare, dataloader"), ("train_begin",
             "first step"), ("first_step", None)]
    t = {**t, "start": r["start"]}
    return [(what, t[b] - t[a]) for (a, what), (b, _) in zip(marks, marks[1:])] + [
        ("after the last step: save, report, checkpoint copy", r["end"] - t["last_step"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="an HF folder, or 'tiny': the tests' tiny random Llama")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4, help="examples per worker and step")
    parser.add_argument("--seq-len", type=int, default=256, help="max_length (tokens per example)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus-per-worker", type=int, help="default: the machine's cores / workers")
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker (the bare run uses one)")
    args = parser.parse_args()

    import ray

    from arena_ray.settings.train import TrainConfig

    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    base = tiny_model(work) if args.model == "tiny" else Path(args.model)
    data = curated_sft(work, args.steps * args.batch * args.workers)
    cpus = args.cpus_per_worker or max(1, (os.cpu_count() or 1) // args.workers)
    common = dict(max_steps=args.steps, max_length=args.seq_len, learning_rate=1e-4, logging_steps=1,
                  lr_scheduler_type="constant", seed=0, cpus_per_worker=cpus, use_gpu=args.gpu)
    ray_cfg = TrainConfig(per_device_batch_size=args.batch, num_workers=args.workers, **common)
    bare_cfg = TrainConfig(per_device_batch_size=args.batch * args.workers, **common)

    b = bare(base, data, bare_cfg, work / "bare")
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cpus * args.workers), include_dashboard=False)
    try:
        r = through_ray(base, data, ray_cfg, work / "ray" / "sft")
    finally:
        ray.shutdown()

    print(f"model={args.model} steps={args.steps} batch={args.batch}x{args.workers} seq_len={args.seq_len} "
          f"cpus/worker={cpus} gpu={args.gpu}")
    for name, x in (("bare TRL   ", b), ("Ray Train  ", r)):
        print(f"{name}: {x['tokens_per_s']:8.0f} tokens/s ({x['tokens']} tokens), set-up {x['setup_s']:5.1f} s, "
              f"steps {x['steps_s']:5.1f} s, wall {x['wall_s']:5.1f} s, last loss {x['loss_last']}")
    print("Ray set-up, where it went:")
    for what, seconds in breakdown(r):
        print(f"  {seconds:5.1f} s  {what}")
    print(f"ratio tokens/s Ray/bare: {r['tokens_per_s'] / b['tokens_per_s']:.3f}  (target >= 0.95)")
    print(f"set-up over bare: {r['setup_s'] - b['setup_s']:+.1f} s  (target <= 15 s); "
          f"wall ratio {r['wall_s'] / b['wall_s']:.2f}")


if __name__ == "__main__":
    main()
