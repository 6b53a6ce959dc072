"""The instruction pipeline (`arena-ray data prepare`) at growing sizes: rows/s and the driver's peak memory.

Synthetic instructions (JSON lines, English sentences of 30-50 words from a fixed vocabulary) with planted
duplicates — 2% exact (case and spacing changed), 2% near (a copy with its last word changed: Jaccard ≈ 0.95),
1% containing a question of a small eval set (decontaminated against), 0.5% too short, 0.5% German — are
written by a generator that holds only a window of recent rows. Each size then runs in a fresh process:
a local Ray on every core, then `run_data` timed (Ray's start is not). Memory is the driver process's own
(Ray's workers and object store are other processes): its RSS when the pipeline starts, and its high-water
mark (`ru_maxrss`). Printed per size: rows/s, what was found of each planted kind, peak and growth; last, the
ratio of peak driver memory largest/smallest size (target ≤ 1.3: the driver does not hold the table).

    .venv/bin/python benchmarks/pipeline_scale.py [--sizes 100000 1000000] [--cpus N] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

WORDS = ("time people year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact water money story month lot right study book job word "
         "business issue side kind head house service friend father power hour game line end member law car city "
         "community name president team minute idea kid body information school face others level office door "
         "health person art war history party result change morning reason research girl guy moment air teacher "
         "force education food garden plan river market energy music paper system program question travel "
         "explain describe write compare summarise list suggest create design improve analyse organise teach "
         "build choose measure prepare protect share support understand develop discuss evaluate recommend "
         "simple detailed careful clear short long modern local public small large important different "
         "quickly carefully clearly often usually together safely").split()
OPENERS = ("Write a short essay that", "Explain to a new student how", "Describe in plain words why",
           "List the main reasons that", "Suggest a practical plan so that", "Compare two ways in which")
GERMAN = ("Wie kann ich mein Zeitmanagement im Büro verbessern, wenn ich viele Besprechungen habe und trotzdem "
          "meine Aufgaben erledigen muss?")


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(30, 50))]
    return f"{rng.choice(OPENERS)} {' '.join(words)}."


def write_inputs(n: int, folder: Path, seed: int = 0) -> dict:
    """instructions.jsonl (n rows) and eval.jsonl (200 questions); returns how many of each kind were planted."""
    rng = random.Random(seed)
    evals = [sentence(rng) for _ in range(200)]
    with open(folder / "eval.jsonl", "w") as fh:
        for k, text in enumerate(evals):
            fh.write(json.dumps({"id": f"e{k}", "prompt": text}) + "\n")
    recent: deque[str] = deque(maxlen=2000)
    planted = {"exact_dup": 0, "near_dup": 0, "contamination": 0, "length": 0, "language": 0}
    with open(folder / "instructions.jsonl", "w") as fh:
        for k in range(n):
            roll = rng.random()
            if roll < 0.02 and recent:
                text, kind = "  " + rng.choice(recent).upper().replace(" ", "   "), "exact_dup"
            elif roll < 0.04 and recent:
                words = rng.choice(recent).split()
                text, kind = " ".join(words[:-1] + [rng.choice(WORDS) + "."]), "near_dup"
            elif roll < 0.05:   # an eval question inside a longer text: its own words keep copies apart
                tail = " ".join(rng.choice(WORDS) for _ in range(15))
                text, kind = f"{rng.choice(evals)} Then also {tail}.", "contamination"
            elif roll < 0.055:
                text, kind = "Hi there", "length"
            elif roll < 0.06:
                text, kind = GERMAN + f" ({k})", "language"
            else:
                text, kind = sentence(rng), None
                recent.append(text)
            if kind:
                planted[kind] += 1
            fh.write(json.dumps({"id": f"r{k}", "prompt": text}) + "\n")
    return planted


def one_size(folder: str, cpus: int) -> dict:
    """In this (fresh) process: a local Ray, then the pipeline; the driver's RSS before and its peak."""
    import psutil
    import ray

    from arena_ray.settings import from_dict
    from arena_ray.settings.data import DataJob
    from arena_ray.workflows.prepare import run_data

    folder = Path(folder)
    job = from_dict({"out_dir": str(folder / "out"), "sources": [{"path": str(folder / "instructions.jsonl")}],
                     "clean": {"decontaminate_against": [str(folder / "eval.jsonl")]},
                     "split": {"shards": 4, "holdout": 1000, "seed": 0},
                     "ray": {"num_cpus": cpus, "include_dashboard": False}}, schema=DataJob)
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    rss_start = psutil.Process().memory_info().rss
    start = time.perf_counter()
    report = run_data(job)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ray.shutdown()
    return {"rows": report["ingested"], "seconds": round(elapsed, 1), "rows_per_s": round(report["ingested"] / elapsed),
            "kept": report["kept"], "removed": {k: v["removed"] for k, v in report["steps"].items()},
            "holdout": report["holdout"], "shards": report["shards"],
            "driver_rss_start_mib": round(rss_start / 2**20), "driver_peak_mib": round(peak / 2**20),
            "driver_growth_mib": round((peak - rss_start) / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--keep", help="write inputs and outputs under this folder (default: a temp dir)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.cpus)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for n in args.sizes:
            folder = Path(args.keep or scratch) / f"n{n}"
            folder.mkdir(parents=True, exist_ok=True)
            planted = write_inputs(n, folder)
            done = subprocess.run([sys.executable, __file__, "--one", str(folder), "--cpus", str(args.cpus)],
                                  capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
            if done.returncode:
                sys.exit(f"size {n} failed:\n{done.stderr[-4000:]}")
            row = {**json.loads(done.stdout.strip().splitlines()[-1]), "planted": planted}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'rows':>9} {'s':>7} {'rows/s':>7} {'driver RSS at start':>20} {'peak':>6} {'growth':>7}  "
          f"removed (planted)")
    for r in rows:
        found = ", ".join(f"{k} {r['removed'].get(k, 0)} ({r['planted'][k]})" for k in r["planted"])
        print(f"{r['rows']:>9} {r['seconds']:>7} {r['rows_per_s']:>7} {r['driver_rss_start_mib']:>16} MiB "
              f"{r['driver_peak_mib']:>6} {r['driver_growth_mib']:>7}  {found}")
    small, large = rows[0], rows[-1]
    print(f"\ndriver peak memory at {large['rows'] / small['rows']:.0f}x the rows: "
          f"{large['driver_peak_mib'] / small['driver_peak_mib']:.2f}x ({large['driver_peak_mib']} vs "
          f"{small['driver_peak_mib']} MiB; target <= 1.3); rows/s {large['rows_per_s'] / small['rows_per_s']:.2f}x")


if __name__ == "__main__":
    main()
