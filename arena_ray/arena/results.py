"""Turn a run directory's ledger into the contract's battles.jsonl, leaderboard.json/.md and stats.json."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional, Sequence

from arena_ray.arena.conversation import turn_key
from arena_ray.arena.ledger import Ledger, load_instructions_of
from arena_ray.arena.pairing import BattlePlan
from arena_ray.arena.progress import Tally, tally
from arena_ray.data.battles import fastchat_record, read_run_dir
from arena_ray.judging import card as cards
from arena_ray.rating import bradley_terry, leaderboard
from arena_ray.rating.categories import write_category_boards
from arena_ray.records import Battle, Generation, Instruction, Rating
from arena_ray.records.tables import json_text
from arena_ray.settings import Config


def write_battles(path: Path, battles: Sequence[Battle], instructions: Optional[Mapping[str, Instruction]] = None,
                  answers: Optional[Mapping[str, Mapping[str, Sequence[str]]]] = None) -> None:
    """battles.jsonl in FastChat's battle format (data/battles.py fastchat_record), oldest verdict first as
    FastChat sorts them; `answers`: instruction id → model → its answer to each turn, for the conversations."""
    instructions, answers = instructions or {}, answers or {}
    languages = languages_of([instructions[q] for q in {b.question_id for b in battles} if q in instructions])
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as fh:
        for b in sorted(battles, key=lambda b: b.tstamp):
            record = fastchat_record(b, instructions.get(b.question_id), answers.get(b.question_id, {}),
                                     languages.get(b.question_id))
            fh.write(json.dumps(record) + "\n")
    tmp.replace(path)


def languages_of(instructions: Sequence[Instruction]) -> dict[str, str]:
    """instruction id → the prompt's language (py3langid, of the cpu/gpu extras; none without it)."""
    try:
        from arena_ray.data.clean import language
    except ImportError:
        return {}
    return {i.instruction_id: language(i.text)[0] for i in instructions}


def conversations_of(instructions: Mapping[str, Instruction], generations: Sequence[Generation]) -> dict:
    """instruction id → model → its answer to every turn, for the models that answered every turn."""
    texts = {(g.instruction_id, g.model): g.text for g in generations if not g.error and g.text is not None}
    models = {g.model for g in generations}
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for iid, inst in instructions.items():
        keys = [turn_key(inst, k) for k in range(len(inst.user_turns))]
        for model in models:
            turns = [texts.get((key, model)) for key in keys]
            if all(t is not None for t in turns):
                out.setdefault(iid, {})[model] = tuple(turns)
    return out


def outcome(config: Config, ledger: Ledger, plan: BattlePlan, judgments=None,
            generations: Optional[Sequence[Generation]] = None) -> Tally:
    j = config.judge
    return tally(plan, judgments if judgments is not None else ledger.judgments(),
                 generations if generations is not None else ledger.generations(),
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
    judgments, generations = ledger.judgments(), ledger.generations()
    result = outcome(config, ledger, plan, judgments, generations)
    instructions = load_instructions_of(run_dir) if (run_dir / "instructions.parquet").exists() else {}
    answers = conversations_of(instructions, generations) if config.arena.battle_conversations else {}
    write_battles(run_dir / "battles.jsonl", result.battles, instructions, answers)
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
    (run_dir / "stats.json").write_text(json_text({"summary": summary, "this_run": run_stats}, indent=2) + "\n")
    return result, ratings
