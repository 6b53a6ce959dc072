"""The README's consistency table: the shipped GPT-4-judged battles rated by `arena-ray rate` and compared with
the human leaderboards by `arena-ray consistency`, every step through the CLI.

    .venv/bin/python scripts/consistency_table.py [--bootstrap 1000]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

from arena_ray.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LMARENA = DATA / "leaderboards" / "lmarena_text_2025-08-06.csv"
ARENA_HARD = DATA / "leaderboards" / "arena_hard_v0.1_2024-07-31.csv"
NAMES = ROOT / "configs" / "names"


def cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    if code:
        raise SystemExit(f"arena-ray {' '.join(map(str, args))} failed ({code})")
    return out.getvalue()


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cli("rate", "--battles", DATA / "battles" / "arena_hard_battles.jsonl", "--out", tmp / "ah",
            "--bootstrap", args.bootstrap)
        cli("import-reviews", "--reviews", DATA / "battles" / "vicuna_bench_2023_reviews", "--answers",
            DATA / "answers" / "vicuna_bench_2023", "--out", tmp / "vicuna.jsonl")
        cli("rate", "--battles", tmp / "vicuna.jsonl", "--out", tmp / "vicuna", "--bootstrap", args.bootstrap)
        for ours, label, reference, names in (
                ("ah", "arena-hard battles (GPT-4 judge)", LMARENA, "lmarena.json"),
                ("ah", "arena-hard battles (GPT-4 judge)", ARENA_HARD, "arena_hard.json"),
                ("vicuna", "Vicuna-bench reviews (GPT-4 / GPT-3.5)", LMARENA, "lmarena.json")):
            r = json.loads(cli("consistency", "--ours", tmp / ours, "--reference", reference,
                               "--names", NAMES / names))
            rows.append((label, reference.stem, r))
    print("| our battles | reference | models | Spearman | Kendall | agreement (95% CI) | separability (95% CI) "
          "| Arena Learning avg | unmatched |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for label, ref, r in rows:
        print(f"| {label} | {ref} | {r['models']} | {r['spearman']:.3f} | {r['kendall']:.3f} | "
              f"{r['agreement']:.3f} | {r['separability']:.3f} | {r['arena_learning_consistency']:.3f} | "
              f"{', '.join(r['unmatched_ours']) or '–'} |")


if __name__ == "__main__":
    main_()
