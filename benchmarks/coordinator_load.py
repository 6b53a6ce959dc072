"""Load: 10k → 100k scheduled battles through the coordinator's scheduler with instant fake engines.

Every battle is real work for the scheduler — two answers generated once per (instruction, model), two judge
games built from the judge template, parsed, combined, streamed to the Parquet ledger — only the models are
instant (testing/fakes.py), so what is timed is the scheduling overhead. Each size runs in a fresh process
so peak memory is that size's own (measured when the scheduler finishes, before the check that reads the
ledger back). Each size is also run as a resume: half the instructions first (the ledger a crash leaves),
then the whole plan in a new process, which must index what is recorded and do only the rest. Prints µs per
battle and peak memory per size, and the ratios of the largest to the smallest size (flat: both ≈ 1).

    .venv/bin/python benchmarks/coordinator_load.py [--sizes 10000 30000 100000] [--flush-every 512]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {"m1": 1, "m2": 2, "m3": 3, "m4": 4}   # 4 models, all pairs: 6 battles per instruction


class InstantClient:
    def __init__(self, engine, capacity: int):
        self.engine, self.capacity = engine, capacity

    async def generate(self, request):
        return await self.engine.generate(request)


def one_size(battles: int, flush_every: int, ledger_dir: str, fraction: float) -> dict:
    """Run the scheduler over the first `fraction` of the instructions into ledger_dir (which may already hold
    a part of the run: then this is a resume) and check that every battle of that part is in the ledger."""
    from arena_ray.arena.ledger import Ledger
    from arena_ray.arena.pairing import BattlePlan, model_pairs
    from arena_ray.arena.progress import tally
    from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings
    from arena_ray.judging.prompts import load_template
    from arena_ray.records import Instruction, SamplingSpec
    from arena_ray.serving.retry import RetryPolicy
    from arena_ray.testing.fakes import EchoEngine, LengthJudge

    template = load_template("pairwise-v1")
    n_instr = int(battles // 6 * fraction)
    instructions = [Instruction(f"q{i}", f"Question {i}: explain topic number {i} briefly.", "load")
                    for i in range(n_instr)]
    plan = BattlePlan(tuple(i.instruction_id for i in instructions), tuple(model_pairs(list(MODELS), "all_pairs")),
                      "judge", template.version)
    competitors = {m: InstantClient(EchoEngine(repeat=r), 64) for m, r in MODELS.items()}
    settings = JudgeSettings("judge", template, SamplingSpec(max_tokens=64), 0.7, 3, 4000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sched = BattleScheduler(instructions, plan, competitors, InstantClient(LengthJudge(), 256), settings,
                            RetryPolicy(timeout_s=60, max_retries=0, backoff_s=0.0), Ledger(ledger_dir),
                            flush_every=flush_every, flush_interval_s=5.0)
    start = time.perf_counter()
    summary = asyncio.run(sched.run())
    elapsed = time.perf_counter() - start
    peak_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the scheduler's own peak, before tally
    ledger = Ledger(ledger_dir)
    result = tally(plan, ledger.judgments(), ledger.generations(), max_attempts=3, disagreement="average",
                   tie_margin=0.0, use_weighted=False)
    assert len(result.battles) == len(plan), (len(result.battles), len(plan))
    run_battles = summary.games_total // 2
    return {"battles": len(plan), "run_battles": run_battles, "seconds": round(elapsed, 2),
            "us_per_battle": round(1e6 * elapsed / max(run_battles, 1), 1),
            "peak_rss_mib": round(peak_run / 1024, 1), "rss_growth_mib": round((peak_run - rss_before) / 1024, 1)}


def run_one(n: int, flush_every: int, ledger_dir: str, fraction: float) -> dict:
    """In a fresh process, so that the peak memory is this run's own."""
    out = subprocess.run([sys.executable, __file__, "--one", str(n), "--flush-every", str(flush_every),
                          "--ledger", ledger_dir, "--fraction", str(fraction)],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--flush-every", type=int, default=512)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--fraction", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.flush_every, args.ledger, args.fraction)))
        return
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as fresh, tempfile.TemporaryDirectory() as resumed:
            row = run_one(n, args.flush_every, fresh, 1.0)
            run_one(n, args.flush_every, resumed, 0.5)  # half the run, as a crash would leave it
            resume = run_one(n, args.flush_every, resumed, 1.0)
        row.update(resume_seconds=resume["seconds"], resume_peak_rss_mib=resume["peak_rss_mib"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'battles':>8} {'s':>7} {'µs/battle':>10} {'peak RSS MiB':>13} {'growth MiB':>11} "
          f"{'resume half: s':>15} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['battles']:>8} {r['seconds']:>7} {r['us_per_battle']:>10} {r['peak_rss_mib']:>13} "
              f"{r['rss_growth_mib']:>11} {r['resume_seconds']:>15} {r['resume_peak_rss_mib']:>13}")
    small, large = rows[0], rows[-1]
    scale = large["battles"] / small["battles"]
    print(f"\noverhead per battle, {large['battles']} vs {small['battles']} battles: "
          f"{large['us_per_battle'] / small['us_per_battle']:.2f}x (1.00 = flat)")
    print(f"peak memory at {scale:.0f}x the battles: {large['peak_rss_mib'] / small['peak_rss_mib']:.2f}x "
          f"({large['peak_rss_mib'] - small['peak_rss_mib']:+.1f} MiB); resuming a half-done run: "
          f"{large['resume_peak_rss_mib'] / small['resume_peak_rss_mib']:.2f}x "
          f"({large['resume_peak_rss_mib'] - small['resume_peak_rss_mib']:+.1f} MiB)")


if __name__ == "__main__":
    main()
