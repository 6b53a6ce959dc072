"""What is done and what is left, derived from the ledger alone. Pure: the coordinator and the driver's
final tally both read it, so a resumed run decides exactly as an uninterrupted one would."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from arena_ray.arena.pairing import PlannedBattle
from arena_ray.judging.combine import combine_games
from arena_ray.records import Battle, Generation, Judgment


@dataclass(frozen=True)
class GameState:
    """One (battle, position): settled once parsed, or once max_attempts attempts all failed."""

    ok: Judgment | None
    attempts: int

    def settled(self, max_attempts: int) -> bool:
        return self.ok is not None or self.attempts >= max_attempts


def game_states(judgments: Iterable[Judgment]) -> dict[tuple[str, int], GameState]:
    attempts: dict[tuple[str, int], int] = defaultdict(int)
    ok: dict[tuple[str, int], Judgment] = {}
    for j in judgments:
        key = (j.battle_id, j.position)
        attempts[key] = max(attempts[key], j.attempt + 1)
        if j.parse_ok and key not in ok:
            ok[key] = j
    return {k: GameState(ok.get(k), n) for k, n in attempts.items()}


def remaining_work(plan: Sequence[PlannedBattle], generations: Iterable[Generation], judgments: Iterable[Judgment],
                   max_attempts: int) -> tuple[list[tuple[PlannedBattle, int, int]], dict[str, list[str]]]:
    """Games still to judge as (battle, position, next attempt), and per model the instruction ids it
    still has to answer (instruction-major order)."""
    generations = list(generations)
    have = {(g.instruction_id, g.model) for g in generations}
    unanswerable = {(g.instruction_id, g.model) for g in generations if g.error}
    states = game_states(judgments)
    games = []
    for pb in plan:
        if (pb.instruction_id, pb.model_a) in unanswerable or (pb.instruction_id, pb.model_b) in unanswerable:
            continue  # settled as failed: a recorded answer is missing for good
        for pos in (0, 1):
            st = states.get((pb.battle_id, pos))
            if st is None or not st.settled(max_attempts):
                games.append((pb, pos, st.attempts if st else 0))
    needed: dict[str, dict[str, None]] = {}
    for pb, _, _ in games:
        for m in (pb.model_a, pb.model_b):
            if (pb.instruction_id, m) not in have:
                needed.setdefault(m, {})[pb.instruction_id] = None  # an ordered set
    return games, {m: list(ids) for m, ids in needed.items()}


@dataclass
class Tally:
    battles: list[Battle] = field(default_factory=list)
    inconsistent: int = 0       # games disagreed (kept or discarded per rule)
    discarded: int = 0          # left out by disagreement=discard
    failed_battles: int = 0     # a game failed after all attempts, or an answer was missing
    failed_by_model: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending: int = 0            # not settled yet (an interrupted run)


def tally(plan: Sequence[PlannedBattle], judgments: Iterable[Judgment], generations: Iterable[Generation], *,
          max_attempts: int, disagreement: str, tie_margin: float, use_weighted: bool) -> Tally:
    """Combine settled games into battles; count what failed (never silently a tie)."""
    states = game_states(judgments)
    missing = {(g.instruction_id, g.model) for g in generations if g.error}
    out = Tally()
    for pb in plan:
        if (pb.instruction_id, pb.model_a) in missing or (pb.instruction_id, pb.model_b) in missing:
            _fail(out, pb)
            continue
        games = [states.get((pb.battle_id, pos)) for pos in (0, 1)]
        if any(g is None or not g.settled(max_attempts) for g in games):
            out.pending += 1
            continue
        if any(g.ok is None for g in games):
            _fail(out, pb)
            continue
        battle = combine_games(games[0].ok, games[1].ok, disagreement=disagreement, tie_margin=tie_margin,
                               use_weighted=use_weighted)
        if battle is None:
            out.discarded += 1
            out.inconsistent += 1
            continue
        out.inconsistent += not battle.consistent
        out.battles.append(battle)
    return out


def _fail(out: Tally, pb: PlannedBattle) -> None:
    out.failed_battles += 1
    out.failed_by_model[pb.model_a] += 1
    out.failed_by_model[pb.model_b] += 1
