"""What the report shows, read from a run directory (an arena run or a flywheel dir) into plain records.
Pure apart from reading files (no ray, vllm or torch)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from arena_ray.arena.ledger import Ledger
from arena_ray.data.battles import read_battles
from arena_ray.data.ingest import read_json
from arena_ray.data.leaderboards import read_board
from arena_ray.errors import InputError
from arena_ray.rating.matrix import observed_win_rates
from arena_ray.records import Judgment


@dataclass
class JudgeStats:
    games: int = 0
    parse_failures: int = 0
    first_position_wins: int = 0     # decisive games (logprob-weighted scores where recorded) won by the first shown
    decisive_games: int = 0
    position_disagreement_rate: Optional[float] = None

    @property
    def first_position_rate(self) -> Optional[float]:
        return self.first_position_wins / self.decisive_games if self.decisive_games else None


@dataclass
class ArenaView:
    name: str
    leaderboard: list[dict]                    # model, rating, ci_low, ci_high, battles
    win_models: list[str]
    win_rates: list[list[float]]
    judge: JudgeStats
    retries: int = 0                 # requests retried in the last run (all roles)
    coordinator_restarts: int = 0
    categories: dict = field(default_factory=dict)   # field → {"values": [{value, battles, models, leader}]}
    judge_card: dict = field(default_factory=dict)   # leaderboard.json's judge section (judging/card.py)
    battles: list[dict] = field(default_factory=list)  # the battle browser's rows (battle_rows)
    battles_total: int = 0


@dataclass
class FlywheelView:
    rows: list[dict]                           # summary.json iterations
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # stage → (step, loss)


@dataclass
class ReportData:
    title: str
    arenas: list[ArenaView]
    flywheel: Optional[FlywheelView] = None


def judge_stats(judgments: list[Judgment], summary: dict) -> JudgeStats:
    stats = JudgeStats(games=len(judgments), position_disagreement_rate=summary.get("position_disagreement_rate"))
    for j in judgments:
        if not j.parse_ok:
            stats.parse_failures += 1
            continue
        weighted = j.weighted_score_a is not None and j.weighted_score_b is not None
        a, b = (j.weighted_score_a, j.weighted_score_b) if weighted else (j.score_a, j.score_b)
        if a == b:
            continue
        stats.decisive_games += 1
        a_won = a > b
        stats.first_position_wins += a_won == (j.position == 0)
    return stats


BROWSER_BATTLES = 300  # battles the report's browser shows (the first by instruction): answers make pages heavy


def battle_rows(battles, judgments: list[Judgment], limit: int = BROWSER_BATTLES) -> list[dict]:
    """Per battle: the prompt, both answers, the verdict and the judge's explanation in each order."""
    said = {(j.battle_id, j.position): j.explanation for j in judgments if j.parse_ok}
    rows = []
    for b in sorted(battles, key=lambda b: (b.question_id, b.model_a, b.model_b))[:limit]:
        bid = dict(b.fields).get("battle_id", "")
        rows.append({"question_id": b.question_id, "prompt": b.prompt or "", "model_a": b.model_a,
                     "model_b": b.model_b, "winner": b.winner, "score_a": dict(b.fields).get("score_a"),
                     "score_b": dict(b.fields).get("score_b"), "text_a": b.text_a or "", "text_b": b.text_b or "",
                     "explanation_ab": said.get((bid, 0), ""), "explanation_ba": said.get((bid, 1), "")})
    return rows


def arena_view(run_dir: Path, name: str) -> ArenaView:
    board = read_board(run_dir / "leaderboard.json")
    leaderboard = [{"model": m, **v} for m, v in board["models"].items()]
    # the file lists models in board order already (rated by rating, separated ones in their place)
    battles = read_battles(str(run_dir)).battles
    names = [r["model"] for r in leaderboard]
    rates = observed_win_rates([b.triple() for b in battles], names)
    stats = read_json(run_dir / "stats.json") if (run_dir / "stats.json").exists() else {}
    this_run = stats.get("this_run", {})
    judgments = Ledger(run_dir).judgments()
    return ArenaView(name, leaderboard, names, [[float(v) for v in row] for row in rates],
                     judge_stats(judgments, stats.get("summary", {})),
                     retries=sum(m.get("retries", 0) for m in this_run.get("meters", {}).values()),
                     coordinator_restarts=this_run.get("coordinator_restarts", 0),
                     categories=read_json(run_dir / "categories.json")
                     if (run_dir / "categories.json").exists() else {},
                     judge_card=board.get("judge") or {}, battles=battle_rows(battles, judgments),
                     battles_total=len(battles))


MEASURES = ("head_to_head", "lc_win_rate", "raw_win_rate", "mean_length", "judge_score")


def self_reward_rows(summary: dict) -> list[dict]:
    """A self-rewarding summary as the iteration table's rows (the flywheel's shape): M0 from its baseline
    arena, then per iteration the new model, its DPO stage and its arena measures."""
    rows = []
    base = summary.get("baseline") or {}
    m0 = summary.get("m0") or summary["iterations"][0]["from"]
    rows.append({"iteration": 0, "version": m0, "stages": [], **_rated(base, m0), "win_rate": {},
                 **{k: base.get(k) for k in MEASURES}})
    for r in summary["iterations"]:
        arena = r.get("arena") or {}
        stage = {"method": "dpo", "dpo": r.get("pairs_kept"), "skipped": (r.get("dpo") or {}).get("skipped"),
                 **{k: (r.get("dpo") or {}).get(k) for k in ("loss_first", "loss_last")}}
        rows.append({"iteration": r["iteration"], "version": r["to"], "stages": [stage], **_rated(arena, r["to"]),
                     "win_rate": {} if arena.get("win_rate") is None else {r["from"]: arena["win_rate"]},
                     **{k: arena.get(k) for k in MEASURES}})
    return rows


def _rated(arena: dict, name: str) -> dict:
    entry = (arena.get("ratings") or {}).get(name) or {}
    return {"rating": entry.get("rating"), "ci": entry.get("ci")}


def training_curves(root: Path) -> dict[str, list[tuple[int, float]]]:
    curves = {}
    for log in sorted(root.glob("iter*-*/model/training_log.json")):
        entries = json.loads(log.read_text())
        curves[log.parent.parent.name] = [(int(e["step"]), float(e["loss"])) for e in entries if "loss" in e]
    return curves


def collect(path: str | Path) -> ReportData:
    root = Path(path)
    if not root.is_dir():
        what = "a file" if root.exists() else "no such directory"
        raise InputError(f"{root}: {what}; report reads an arena run directory or a flywheel dir")
    if (root / "summary.json").exists() and (root / "registry.jsonl").exists():
        summary = read_json(root / "summary.json")
        rows = summary.get("iterations")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"{root / 'summary.json'}: 'iterations' must be a non-empty list of iteration records")
        evals = sorted(p for p in (root / "eval").glob("*") if (p / "leaderboard.json").exists())
        if all("to" in r for r in rows):  # a self-rewarding loop's summary (workflows/selfreward)
            evals += sorted(p for p in root.glob("iter*/arena") if (p / "leaderboard.json").exists())
            arenas = [arena_view(p, f"eval of {p.parent.name if p.name == 'arena' else p.name}") for p in evals]
            return ReportData(f"Self-rewarding {root.name}", arenas,
                              FlywheelView(self_reward_rows(summary), training_curves(root)))
        arenas = [arena_view(p, f"eval of {p.name}") for p in evals]
        return ReportData(f"Flywheel {root.name}", arenas, FlywheelView(rows, training_curves(root)))
    if (root / "leaderboard.json").exists():
        return ReportData(f"Arena {root.name}", [arena_view(root, root.name)])
    found = [n for n in ("summary.json", "registry.jsonl") if (root / n).exists()]
    raise InputError(f"{root}: neither an arena run (it has no leaderboard.json) nor a flywheel dir (it needs "
                     f"summary.json and registry.jsonl{'; found only ' + ', '.join(found) if found else ''})")
