"""The flywheel's closing table, pure: per iteration, data sizes per stage, training loss (ppo: reward), each
version's rating (with its 95% CI) on the offline test set, its head-to-head win rate against @0 (with a
bootstrap interval), its length-controlled win rate against the reference competitor, its mean answer length
and judge score, and its win rate against each competitor."""
from __future__ import annotations

from typing import Optional, Sequence

from arena_ray.rating.answer_stats import answer_stats
from arena_ray.rating.leaderboard import rating_text, summary_of
from arena_ray.rating.matrix import win_rate
from arena_ray.rating.winrates import (
    comparisons_from_battles,
    head_to_head,
    head_to_head_text,
    length_controlled_win_rate,
)
from arena_ray.records import Rating

STAGE_KEYS = ("method", "battles", "sft", "dpo", "rm", "skipped", "loss_first", "loss_last", "margin_last",
              "reward_first", "reward_last", "version", "measures")


def version_measures(version: str, rating: Rating | None, battles: Sequence, competitors: Sequence[str],
                     base: Optional[str] = None, lc_reference: Optional[str] = None, seed: int = 0) -> dict:
    """A version on the offline test set: rating, win rates, head-to-head against `base`, LC win rate against
    `lc_reference`, its answers' length and judge score."""
    lc = length_controlled_win_rate(comparisons_from_battles(battles, version, lc_reference)) if lc_reference \
        else None
    return {
        **summary_of(rating),
        "win_rate": {c: round(win_rate(battles, version, c)[0], 3) for c in competitors},
        "head_to_head": head_to_head(battles, version, base, seed=seed) if base and base != version else None,
        "lc_reference": lc_reference, "lc_win_rate": None if lc is None else _round(lc["lc_win_rate"]),
        "raw_win_rate": None if lc is None else _round(lc["win_rate"]),
        **answer_stats(battles, version),
    }


def iteration_row(iteration: int, version: str, stages: Sequence[dict], rating: Rating | None,
                  battles: Sequence, competitors: Sequence[str], base: Optional[str] = None,
                  lc_reference: Optional[str] = None, seed: int = 0) -> dict:
    """An iteration: its stages (each with the version it made and, where that was rated, its measures) and
    the iteration's version's measures."""
    return {"iteration": iteration, "version": version, "stages": [{k: s.get(k) for k in STAGE_KEYS} for s in stages],
            **version_measures(version, rating, battles, competitors, base, lc_reference, seed)}


def _round(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 4)


def _fmt(v, digits=2) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _stage_cells(s: dict) -> list[str]:
    if s.get("skipped"):
        change = "skipped: no data"
    elif s.get("method") == "ppo":
        change = f"reward {_fmt(s.get('reward_first'), 3)}→{_fmt(s.get('reward_last'), 3)}"
    elif s.get("loss_first") is not None:
        change = f"{_fmt(s.get('loss_first'), 3)}→{_fmt(s.get('loss_last'), 3)}"
    else:
        change = "–"
    return [s.get("method") or "base", _fmt(s.get("battles")), _fmt(s.get("sft")), _fmt(s.get("dpo")),
            _fmt(s.get("rm")), change]


def _measure_cells(m: Optional[dict], competitors: Sequence[str]) -> list[str]:
    if not m:
        return ["–"] * (5 + len(competitors))
    return [rating_text(m), head_to_head_text(m.get("head_to_head")), _fmt(m.get("lc_win_rate")),
            _fmt(m.get("mean_length"), 0), _fmt(m.get("judge_score")), *[_fmt((m.get("win_rate") or {}).get(c)) for c in competitors]]


def to_markdown(rows: Sequence[dict], competitors: Sequence[str]) -> str:
    """One line per version: @0, then each stage's version (the iteration's last stage makes `<target>@i`)."""
    ref = next((r.get("lc_reference") for r in rows if r.get("lc_reference")), None)
    head = ["iter", "version", "stage", "battles", "sft", "dpo", "rm", "loss (ppo: reward) first→last",
            "rating (95% CI)", "vs @0 (95% CI) W/T/L", f"LC win vs {ref}" if ref else "LC win", "mean length",
            "judge score", *[f"win vs {c}" for c in competitors]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        for k, s in enumerate(row["stages"] or [{}]):
            own = s.get("version")
            measures = (row if k == 0 else None) if own is None else row if own == row["version"] else s.get("measures")
            cells = [str(row["iteration"]) if k == 0 else "", own or (row["version"] if k == 0 else ""),
                     *_stage_cells(s), *_measure_cells(measures, competitors)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def focus_markdown(rows: Sequence[dict]) -> str:
    """Per focused iteration, the target's win rate per category before (the previous iteration, which chose
    them) and after (this iteration's battles on them)."""
    out = []
    for row in rows:
        focus = row.get("focus")
        if not focus:
            continue
        out += [f"\n### Iteration {row['iteration']}: focused by {focus['by']}\n",
                "| category | win rate before | battles | win rate after | battles |", "|---|---|---|---|---|"]
        for cat, r in focus["categories"].items():
            b, a = r["before"] or {}, r["after"]
            out.append(f"| {cat or '(none)'} | {_fmt(b.get('win_rate'))} | {_fmt(b.get('battles'))} | "
                       f"{_fmt(a['win_rate'])} | {a['battles']} |")
    return "\n".join(out) + ("\n" if out else "")
