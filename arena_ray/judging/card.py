"""A judge card: how a judge agrees with people, from its verdicts on human-labelled pairs. Pure.

Every item was judged twice, the answers in both orders, as the arena judges a battle. Metrics:
- accuracy: share of items whose combined verdict (a, b or tie) equals the human label; on all items and on
  the decisive ones (people preferred one answer; a judge tie counts as wrong there), each with a bootstrap
  95% interval over the items;
- position_consistency: share of items whose two orders gave the same verdict;
- tie_rate: share of items the judge called a tie; human_tie_agreement: of the items people called a tie,
  the share the judge did too;
- length_bias: of the judge's decisive verdicts between answers of different length, the share that chose
  the longer one (people's own share beside it);
- self_preference and run_position_consistency (added for an arena run): how often the judge preferred its own
  answers where it is also a competitor, and the position consistency on the run's own battles.
A judge is flagged unreliable when position consistency is below 0.6 or its decisive accuracy is not above
chance (the interval's lower end at or below 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from arena_ray.judging.combine import combine_games, combine_panel, game_scores, winner_of
from arena_ray.records import Battle, HumanPair, Judgment

MIN_CONSISTENCY = 0.6


@dataclass(frozen=True)
class JudgeItem:
    id: str
    human: str                    # a | b | tie
    verdict: Optional[str]        # what the arena would record after combining both orders; None: unparsed
    verdict_ab: Optional[str]     # answer a shown first
    verdict_ba: Optional[str]     # answer b shown first (mapped back to a / b)
    score_a: Optional[float]
    score_b: Optional[float]
    len_a: int = 0
    len_b: int = 0


LETTER = {"model_a": "a", "model_b": "b", "tie": "tie"}
HUMAN = {1: "a", -1: "b", 0: "tie"}


def item_from(pair: HumanPair, games: dict[int, Judgment], *, disagreement: str, tie_margin: float,
              use_weighted: bool) -> JudgeItem:
    """One pair's card item from its parsed games (position 0: answer a shown first, 1: b first; a position
    missing was never parsed). The verdict combines both orders exactly as an arena battle does; a
    'discard' of disagreeing orders leaves it None."""
    def one(position: int) -> Optional[str]:
        g = games.get(position)
        return LETTER[winner_of(*game_scores(g, use_weighted), tie_margin)] if g else None

    verdict, score_a, score_b = None, None, None
    if 0 in games and 1 in games:
        battle = combine_games(games[0], games[1], disagreement=disagreement, tie_margin=tie_margin,
                               use_weighted=use_weighted)
        if battle is not None:
            verdict, score_a, score_b = LETTER[battle.winner], battle.score_a, battle.score_b
    return JudgeItem(pair.pair_id, HUMAN[pair.label], verdict, one(0), one(1), score_a, score_b,
                     len(pair.response_1), len(pair.response_2))


def panel_item_from(pair: HumanPair, member_games: dict[str, dict[int, Judgment]], *, rule: str,
                    disagreement: str, tie_margin: float, use_weighted: bool) -> JudgeItem:
    """A judge panel's card item: each order's verdict and the combined one as the arena's panel decides them
    (members combined by `rule`); an order some member never parsed leaves that verdict None."""
    def order(position: int) -> Optional[str]:
        if any(position not in g for g in member_games.values()):
            return None
        return LETTER[combine_panel([_one_order(g[position], use_weighted, tie_margin) for g in member_games.values()],
                                    rule, tie_margin).winner]

    verdict, score_a, score_b = None, None, None
    if all(0 in g and 1 in g for g in member_games.values()):
        battles = [combine_games(g[0], g[1], disagreement=disagreement, tie_margin=tie_margin,
                                 use_weighted=use_weighted) for g in member_games.values()]
        if all(b is not None for b in battles):
            panel = combine_panel(battles, rule, tie_margin)
            verdict, score_a, score_b = LETTER[panel.winner], panel.score_a, panel.score_b
    return JudgeItem(pair.pair_id, HUMAN[pair.label], verdict, order(0), order(1), score_a, score_b,
                     len(pair.response_1), len(pair.response_2))


def _one_order(game: Judgment, use_weighted: bool, tie_margin: float) -> Battle:
    a, b = game_scores(game, use_weighted)
    return Battle(game.battle_id, game.instruction_id, game.model_a, game.model_b, winner_of(a, b, tie_margin), a, b,
                  True, game.judge, game.prompt_version)


def self_preference(battles: Sequence[Battle], judge: str) -> Optional[dict]:
    """How often a judge that is also a competitor preferred its own answers: its share of the decisive
    battles it fought (ties left out), beside the count; None when it fought none."""
    own = [b for b in battles if judge in (b.model_a, b.model_b) and b.winner != "tie"]
    if not own:
        return None
    won = sum((b.winner == "model_a") == (b.model_a == judge) for b in own)
    return {"rate": round(won / len(own), 4), "decisive_battles": len(own)}


def _interval(hits: np.ndarray, rounds: int, seed: int) -> list[Optional[float]]:
    """The bootstrap 95% interval of a share, as [low, high] (a list: the card is JSON)."""
    if not len(hits):
        return [None, None]
    rng = np.random.default_rng(seed)
    means = hits[rng.integers(0, len(hits), size=(rounds, len(hits)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _share(mask: Sequence[bool]) -> Optional[float]:
    return round(float(np.mean(mask)), 4) if len(mask) else None


def card(items: Sequence[JudgeItem], *, rounds: int = 1000, seed: int = 0) -> dict:
    judged = [i for i in items if i.verdict is not None]
    decisive = [i for i in judged if i.human != "tie"]
    hits = np.array([i.verdict == i.human for i in judged], dtype=float)
    hits_decisive = np.array([i.verdict == i.human for i in decisive], dtype=float)
    both = [i for i in items if i.verdict_ab is not None and i.verdict_ba is not None]
    lengthy = [i for i in judged if i.verdict in ("a", "b") and i.len_a != i.len_b]
    human_lengthy = [i for i in judged if i.human in ("a", "b") and i.len_a != i.len_b]
    out = {
        "items": len(items), "judged": len(judged), "unparsed": len(items) - len(judged), "decisive": len(decisive),
        "accuracy": _share(hits), "accuracy_ci": _interval(hits, rounds, seed),
        "accuracy_decisive": _share(hits_decisive), "accuracy_decisive_ci": _interval(hits_decisive, rounds, seed + 1),
        "position_consistency": _share([i.verdict_ab == i.verdict_ba for i in both]),
        "tie_rate": _share([i.verdict == "tie" for i in judged]),
        "human_tie_agreement": _share([i.verdict == "tie" for i in judged if i.human == "tie"]),
        "length_bias": _share([(i.verdict == "a") == (i.len_a > i.len_b) for i in lengthy]),
        "human_length_preference": _share([(i.human == "a") == (i.len_a > i.len_b) for i in human_lengthy]),
    }
    out["reliable"], out["why_not"] = reliability(out)
    return out


def reliability(c: dict) -> tuple[bool, list[str]]:
    why = []
    if c.get("position_consistency") is None or c["position_consistency"] < MIN_CONSISTENCY:
        why.append(f"changes its verdict with the order of the answers in "
                   f"{_pct(1 - (c.get('position_consistency') or 0))} of human-labelled pairs "
                   f"(position consistency {c.get('position_consistency')} < {MIN_CONSISTENCY})")
    run = c.get("run_position_consistency")
    if run is not None and run < MIN_CONSISTENCY:
        why.append(f"changed its verdict with the order of the answers in {_pct(1 - run)} of this run's battles "
                   f"(position consistency {run} < {MIN_CONSISTENCY})")
    low = (c.get("accuracy_decisive_ci") or (None, None))[0]
    if low is None or low <= 0.5:
        ci = c.get("accuracy_decisive_ci") or [None, None]
        why.append(f"agrees with people not above chance (accuracy {c.get('accuracy_decisive')} on decisive pairs, "
                   f"95% CI {ci[0]}–{ci[1]})")
    return not why, why


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def warning(c: dict) -> Optional[str]:
    """The line a board prints under a weak judge, or None."""
    if c.get("reliable"):
        return None
    return "this ranking is not reliable: the judge " + "; and ".join(c.get("why_not") or ["was not measured"])


def to_markdown(c: dict, title: str = "Judge card") -> str:
    def f(v) -> str:
        return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    def ci(v) -> str:
        return "" if not v or v[0] is None else f" ({v[0]:.3f}–{v[1]:.3f})"

    rows = [("items (judged / unparsed)", f"{c['items']} ({c['judged']} / {c['unparsed']})"),
            ("accuracy vs people, all items", f(c["accuracy"]) + ci(c.get("accuracy_ci"))),
            ("accuracy vs people, decisive items", f(c["accuracy_decisive"]) + ci(c.get("accuracy_decisive_ci"))),
            ("position consistency", f(c["position_consistency"])),
            ("tie rate", f(c["tie_rate"])), ("agreement on human ties", f(c["human_tie_agreement"])),
            ("chose the longer answer (people)", f"{f(c['length_bias'])} ({f(c['human_length_preference'])})")]
    if c.get("self_preference"):
        sp = c["self_preference"]
        rows.append(("preferred its own answers (this run)", f"{f(sp['rate'])} of {sp['decisive_battles']} decisive battles"))
    if "run_position_consistency" in c:
        rows.append(("position consistency on this run's battles", f(c["run_position_consistency"])))
    lines = [f"# {title}", "", *([f"Data: {c['data']}", ""] if c.get("data") else []), "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if c.get("members"):
        lines += ["", f"Panel members (combined by {c.get('panel_rule')}):", "",
                  "| member | accuracy (decisive) | position consistency |", "|---|---:|---:|"]
        lines += [f"| {m} | {f(mc['accuracy_decisive'])}{ci(mc.get('accuracy_decisive_ci'))} | "
                  f"{f(mc['position_consistency'])} |" for m, mc in c["members"].items()]
    w = warning(c)
    if w:
        lines += ["", f"**Warning: {w}.**"]
    return "\n".join(lines) + "\n"


def for_board(c: Optional[dict], run_consistency: Optional[float], self_pref: Optional[dict]) -> dict:
    """The judge section of an arena board: the judge's card (None: never measured) with this run's own
    position consistency and self-preference added, and the verdict on whether the ranking can be trusted."""
    out = dict(c or {"measured": False})
    out["run_position_consistency"], out["self_preference"] = run_consistency, self_pref
    if c is None:
        out["reliable"] = False
        out["why_not"] = ["was never measured against people (judge.card: false, or no card cached)"]
        if run_consistency is not None and run_consistency < MIN_CONSISTENCY:
            out["why_not"].append(f"changed its verdict with the order of the answers in {_pct(1 - run_consistency)}"
                                  f" of this run's battles")
        return out
    out["reliable"], out["why_not"] = reliability(out)
    return out


def board_lines(c: dict) -> str:
    """Markdown under a leaderboard: the judge's agreement with people, its consistency, the warning."""
    def f(v) -> str:
        return "–" if v is None else f"{v:.2f}"

    lines = ["", f"## Judge: {c.get('judge', '?')}", ""]
    if c.get("measured", True):
        ci = c.get("accuracy_decisive_ci") or (None, None)
        lines.append(f"- agreement with people: {f(c.get('accuracy_decisive'))} (95% CI {f(ci[0])}–{f(ci[1])}) on "
                     f"{c.get('decisive')} human-labelled pairs ({', '.join(c.get('data') or [])})")
        lines.append(f"- position consistency on those pairs: {f(c.get('position_consistency'))}")
    for m, mc in (c.get("members") or {}).items():
        lines.append(f"- panel member {m}: agreement {f(mc.get('accuracy_decisive'))}, position consistency "
                     f"{f(mc.get('position_consistency'))}")
    lines.append(f"- position consistency on this run's battles: {f(c.get('run_position_consistency'))}")
    sp = c.get("self_preference")
    if sp:
        lines.append(f"- preferred its own answers in {f(sp['rate'])} of its {sp['decisive_battles']} decisive battles")
    w = warning(c)
    if w:
        lines += ["", f"**Warning: {w}.**"]
    return "\n".join(lines) + "\n"
