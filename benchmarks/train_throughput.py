"""Training speed of SFT through Ray Train (`arena_ray.train.run.train`) vs bare TRL in this process, same run.

Bare: TRL's SFTTrainer called directly in this process (libraries already imported), on the curated file's rows.
Ray: `run.train` on a local Ray session (TorchTrainer, the data through Ray Data, TRL's SFTTrainer per worker):
the first training of the session, then the next one in the same session (as a flywheel's next stage).
Both train the same model on the same curated file (arena-hard prompts, GPT-4 answers) with the same TrainConfig:
steps, examples per step (the bare run takes all workers' batches in one, on all their CPUs), max length,
learning rate, seed; their losses must be equal. Bare runs before and after the Ray runs: a machine busy with
other work shows as two different bare figures.
Printed per run: training tokens/s over steps 2..N (TRL's `num_tokens`, all workers) as their mean and from the
median step (robust to a few disturbed steps); set-up, the call until the first optimiser step has ended; wall,
the call until it returns; where the Ray path's set-up went (the worker's timeline in metrics.json); the ratios
against the less disturbed bare run (targets: tokens/s >= 0.95x, Ray's set-up <= 15 s).

    .venv/bin/python benchmarks/train_throughput.py [--steps 20] [--batch 4] [--seq-len 256] [--workers 1]
        [--model tiny | DIR] [--gpu]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
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


def import_seconds() -> float:
    """What a fresh process pays to import the trainer's libraries (each Ray worker does; the bare runs here are
    timed with them imported, as in a script that has imported them already)."""
    code = "import time; t = time.time(); from trl import SFTTrainer; print(time.time() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def speed(log_history: list[dict], timeline: dict, start: float, end: float) -> dict:
    """tokens/s over steps 2..N (the first step carries one-off work: dataloader, DDP buckets, lazy inits): their
    mean, and the median step's (robust to a machine busy with other work for a few steps)."""
    tokens = [e["num_tokens"] for e in log_history if "num_tokens" in e and "loss" in e]
    steps_s = timeline["last_step"] - timeline["first_step"]
    per_step = (tokens[-1] - tokens[0]) / (len(tokens) - 1)
    return {"tokens_per_s": (tokens[-1] - tokens[0]) / steps_s, "median_tokens_per_s": per_step / timeline["median_step_s"],
            "setup_s": timeline["first_step"] - start, "wall_s": end - start, "tokens": int(tokens[-1]),
            "losses": [e["loss"] for e in log_history if "loss" in e]}


def bare(base: Path, data: Path, settings, scratch: Path) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from arena_ray.train.run import read_examples
    from arena_ray.train.worker import _training_args, step_times

    if not settings.use_gpu:
        torch.set_num_threads(int(settings.cpus_per_worker))  # as Ray gives its workers (OMP_NUM_THREADS)
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

    stamps: dict = {}
    originals = {name: getattr(run, name) for name in ("curated_dataset", "torch_trainer")}

    def stamped(name, fn):  # when the driver starts reading the data into Ray, and hands over to Ray Train
        def call(*args, **kwargs):
            stamps[name] = time.time()
            made = fn(*args, **kwargs)
            if name == "torch_trainer":
                fit = made.fit
                made.fit = lambda: (stamps.setdefault("fit", time.time()), fit())[1]
            return made
        return call

    for name, fn in originals.items():
        setattr(run, name, stamped(name, fn))
    try:
        start = time.time()
        result = run.train("sft", base, data, out, settings)
        end = time.time()
    finally:
        for name, fn in originals.items():
            setattr(run, name, fn)
    log_history = json.loads((result.path / "training_log.json").read_text())
    timeline = {"start": start, **stamps, **result.metrics["timeline"]}
    return {**speed(log_history, timeline, start, end), "timeline": timeline, "end": end}


STAGES = {"start": "driver: check the data and the cluster",
          "curated_dataset": "driver: Ray Data reads the file into the object store",
          "torch_trainer": "driver: build the TorchTrainer",
          "fit": "Ray Train: controller, worker group, process group, until the train function runs",
          "worker_start": "worker: imports (ray.train, transformers)",
          "imported": "worker: the rows from Ray Data (get_dataset_shard, iterate)",
          "data_ready": "worker: model load, TRL's tokenisation (trl import)",
          "trainer_ready": "TRL/accelerate: prepare the model, the dataloader",
          "train_begin": "the first step",
          "first_step": None}


def breakdown(r: dict) -> list[tuple[str, float]]:
    t = r["timeline"]
    marks = [m for m in STAGES if m in t]
    return [(STAGES[a], t[b] - t[a]) for a, b in zip(marks, marks[1:])] + [
        ("after the last step: save, report, worker group shutdown, checkpoint copy", r["end"] - t["last_step"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="an HF folder, or 'tiny': the tests' tiny random Llama")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4, help="examples per worker and step")
    parser.add_argument("--seq-len", type=int, default=256, help="max_length (tokens per example)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus-per-worker", type=int, help="default: the machine's cores / workers")
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker (the bare run uses one)")
    args = parser.parse_args()

    import ray

    from arena_ray.settings.train import TrainConfig

    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    base = tiny_model(work) if args.model == "tiny" else Path(args.model)
    data = curated_sft(work, args.steps * args.batch * args.workers)
    cpus = args.cpus_per_worker or max(1, (os.cpu_count() or 1) // args.workers)
    common = dict(max_steps=args.steps, max_length=args.seq_len, learning_rate=1e-4, logging_steps=1,
                  lr_scheduler_type="constant", seed=0, cpus_per_worker=cpus, use_gpu=args.gpu)
    ray_cfg = TrainConfig(per_device_batch_size=args.batch, num_workers=args.workers, **common)
    bare_cfg = TrainConfig(per_device_batch_size=args.batch * args.workers,
                           **{**common, "cpus_per_worker": cpus * args.workers})

    # Bare before and after the Ray runs: a machine busy with other work shows as two different bare figures.
    bare_runs = [bare(base, data, bare_cfg, work / "bare1")]
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cpus * args.workers), include_dashboard=False)
    try:  # the first training of a session, then the next one in the same session (a flywheel's next stage)
        ray_runs = [through_ray(base, data, ray_cfg, work / "ray" / name) for name in ("first", "next")]
    finally:
        ray.shutdown()
    bare_runs.append(bare(base, data, bare_cfg, work / "bare2"))
    imports_s = import_seconds()

    print(f"model={args.model} steps={args.steps} batch={args.batch}x{args.workers} seq_len={args.seq_len} "
          f"cpus/worker={cpus} gpu={args.gpu} load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    rows = [("bare TRL, before", bare_runs[0]), ("bare TRL, after", bare_runs[1]),
            ("Ray Train, first in session", ray_runs[0]), ("Ray Train, next in session", ray_runs[1])]
    print(f"{'':28} {'tokens/s':>9} {'median':>7} {'set-up s':>9} {'wall s':>7}")
    for name, x in rows:
        print(f"{name:28} {x['tokens_per_s']:9.0f} {x['median_tokens_per_s']:7.0f} {x['setup_s']:9.1f} {x['wall_s']:7.1f}")
    for name, r in rows[2:]:
        print(f"{name}: set-up, where it went")
        for what, seconds in breakdown(r):
            print(f"  {seconds:5.1f} s  {what}")
    losses = {tuple(x["losses"]) for _, x in rows}
    print(f"same training: {len(losses) == 1} ({len(rows[0][1]['losses'])} logged losses, "
          f"{rows[0][1]['losses'][0]:.4f} -> {rows[0][1]['losses'][-1]:.4f}, {rows[0][1]['tokens']} tokens in each run)")
    print(f"a fresh process imports torch, transformers and TRL in {imports_s:.1f} s (each Ray worker does; the bare "
          f"runs' set-up is timed with them imported)")
    bare_tps = max(x["median_tokens_per_s"] for x in bare_runs)  # the less disturbed bare run
    bare_setup = min(x["setup_s"] for x in bare_runs)
    for name, r in rows[2:]:
        print(f"{name}: tokens/s ratio Ray/bare {r['median_tokens_per_s'] / bare_tps:.3f} (median steps; "
              f"target >= 0.95); set-up {r['setup_s']:.1f} s (target <= 15 s), bare's + {r['setup_s'] - bare_setup:.1f} s")


if __name__ == "__main__":
    main()
