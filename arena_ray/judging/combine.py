"""Combine the two position-swapped games of a battle into one outcome. Pure."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Optional, Sequence

from arena_ray.records import Battle, Judgment


def game_scores(game: Judgment, use_weighted: bool) -> tuple[float, float]:
    if use_weighted and game.weighted_score_a is not None and game.weighted_score_b is not None:
        return game.weighted_score_a, game.weighted_score_b
    return game.score_a, game.score_b


def winner_of(score_a: float, score_b: float, tie_margin: float) -> str:
    if score_a - score_b > tie_margin:
        return "model_a"
    if score_b - score_a > tie_margin:
        return "model_b"
    return "tie"


def combine_games(game_0: Judgment, game_1: Judgment, *, disagreement: str, tie_margin: float,
                  use_weighted: bool) -> Optional[Battle]:
    """Average the two games' scores; resolve disagreeing winners by the configured rule.

    disagreement: "average" (winner from the averaged scores), "tie" (disagreement is a tie),
    "discard" (returns None: the battle is left out and counted as inconsistent).
    """
    if not (game_0.parse_ok and game_1.parse_ok):
        raise ValueError(f"battle {game_0.battle_id}: both games must have parsed")
    if {game_0.position, game_1.position} != {0, 1}:
        raise ValueError(f"battle {game_0.battle_id}: need positions 0 and 1")
    a0, b0 = game_scores(game_0, use_weighted)
    a1, b1 = game_scores(game_1, use_weighted)
    score_a, score_b = (a0 + a1) / 2, (b0 + b1) / 2
    w0, w1 = winner_of(a0, b0, tie_margin), winner_of(a1, b1, tie_margin)
    consistent = w0 == w1
    if consistent:
        winner = w0
    elif disagreement == "average":
        winner = winner_of(score_a, score_b, tie_margin)
    elif disagreement == "tie":
        winner = "tie"
    elif disagreement == "discard":
        return None
    else:
        raise ValueError(f"unknown disagreement rule '{disagreement}'")
    return Battle(battle_id=game_0.battle_id, question_id=game_0.instruction_id, model_a=game_0.model_a,
                  model_b=game_0.model_b, winner=winner, score_a=score_a, score_b=score_b,
                  consistent=consistent, judge=game_0.judge, prompt_version=game_0.prompt_version,
                  tstamp=max(game_0.tstamp, game_1.tstamp))


def combine_panel(battles: Sequence[Battle], rule: str, tie_margin: float) -> Battle:
    """A judge panel's battle from its members' (each already combined over both orders).

    mean: the members' mean scores decide (winner within `tie_margin`: a tie); majority: the winner more than
    half the members chose, else a tie. The battle is consistent when every member's was."""
    score_a = sum(b.score_a for b in battles) / len(battles)
    score_b = sum(b.score_b for b in battles) / len(battles)
    if rule == "mean":
        winner = winner_of(score_a, score_b, tie_margin)
    elif rule == "majority":
        top, votes = Counter(b.winner for b in battles).most_common(1)[0]
        winner = top if 2 * votes > len(battles) else "tie"
    else:
        raise ValueError(f"unknown panel rule '{rule}'")
    first = battles[0]
    return replace(first, winner=winner, score_a=score_a, score_b=score_b, judge="panel",
                   consistent=all(b.consistent for b in battles), tstamp=max(b.tstamp for b in battles))
