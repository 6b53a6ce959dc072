"""Turn a run directory's ledger into the contract's battles.jsonl, leaderboard.json/.md and stats.json."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from arena_ray.arena.ledger import Ledger
from arena_ray.arena.pairing import BattlePlan
from arena_ray.arena.progress import Tally, tally
from arena_ray.data.battles import read_run_dir
from arena_ray.judging import card as cards
from arena_ray.rating import bradley_terry, leaderboard
from arena_ray.rating.categories import write_category_boards
from arena_ray.records import Battle, Rating
from arena_ray.settings import Config


def write_battles(path: Path, battles: Sequence[Battle]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as fh:
        for b in battles:
            fh.write(json.dumps(asdict(b)) + "\n")
    tmp.replace(path)


def outcome(config: Config, ledger: Ledger, plan: BattlePlan, judgments=None) -> Tally:
    j = config.judge
    return tally(plan, judgments if judgments is not None else ledger.judgments(), ledger.generations(),
                 max_attempts=j.max_attempts, disagreement=j.disagreement, tie_margin=j.tie_margin,
                 use_weighted=j.logprob_weighted, judges=tuple(j.panel), panel_rule=j.panel_rule)


def disagreement_rate(result: Tally) -> float:
    return round(result.inconsistent / max(1, len(result.battles) + result.discarded), 4)


def judge_section(config: Config, run_dir: Path, result: Tally) -> dict:
    """The judge's card for this run (judge_card.json, written when the run measured or found it) with the
    run's own position consistency and, when the judge also competes, its self-preference."""
    path = run_dir / "judge_card.json"
    card = json.loads(path.read_text()) if path.exists() else None
    judge = config.judge.model
    own = cards.self_preference(result.battles, judge) if judge in config.arena.competitors else None
    decided = len(result.battles) + result.discarded
    section = cards.for_board(card, round(1 - disagreement_rate(result), 4) if decided else None, own)
    section.setdefault("judge", judge)
    return section


def finalize(config: Config, run_dir: Path, plan: BattlePlan, run_stats: dict) -> tuple[Tally, list[Rating]]:
    ledger = Ledger(run_dir)
    ledger.consolidate()
    judgments = ledger.judgments()
    result = outcome(config, ledger, plan, judgments)
    write_battles(run_dir / "battles.jsonl", result.battles)
    ratings: list[Rating] = []
    if result.battles:
        r = config.rating
        ratings = bradley_terry.fit_battles(result.battles, bootstrap_rounds=r.bootstrap_rounds, seed=r.seed,
                                            scale=r.scale, base=r.base)
    weighted = sum(1 for j in judgments if j.parse_ok and j.weighted_score_a is not None)
    parsed = sum(1 for j in judgments if j.parse_ok)
    summary = {"planned_battles": len(plan), "battles": len(result.battles), "failed_battles": result.failed_battles,
               "pending_battles": result.pending, "inconsistent_battles": result.inconsistent,
               "discarded_battles": result.discarded,
               "position_disagreement_rate": disagreement_rate(result),
               "judge_attempts": len(judgments), "parse_failures": len(judgments) - parsed,
               "logprob_weighted_games": weighted, "judge": config.judge.model, "prompt_version": config.judge.prompt}
    judge = judge_section(config, run_dir, result)
    leaderboard.write(run_dir, ratings, result.failed_by_model, {"summary": summary, "judge": judge})
    with (run_dir / "leaderboard.md").open("a") as fh:
        fh.write(cards.board_lines(judge))
    if config.arena.categories and result.battles:
        r = config.rating
        write_category_boards(read_run_dir(run_dir).battles, config.arena.categories, run_dir,
                              bootstrap_rounds=r.bootstrap_rounds, seed=r.seed, scale=r.scale, base=r.base)
    (run_dir / "stats.json").write_text(json.dumps({"summary": summary, "this_run": run_stats}, indent=2) + "\n")
    return result, ratings
