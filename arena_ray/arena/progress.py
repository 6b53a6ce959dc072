"""What is done and what is left, derived from the ledger alone. Pure: the coordinator and the driver's
final tally both read it, so a resumed run decides exactly as an uninterrupted one would.

A judge panel (`judges`: its members) judges every game once per member; a game is then keyed by its battle,
its member and its position. Without a panel the member is left out of every key ("")."""
from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence

from arena_ray.arena.pairing import BattlePlan, PlannedBattle
from arena_ray.judging.combine import combine_games, combine_panel
from arena_ray.records import Battle, Generation, Judgment


@dataclass(frozen=True)
class GameState:
    """One (battle, position): settled once parsed, or once max_attempts attempts all failed."""

    ok: Judgment | None
    attempts: int

    def settled(self, max_attempts: int) -> bool:
        return self.ok is not None or self.attempts >= max_attempts


def game_states(judgments: Iterable[Judgment], panel: bool = False) -> dict[tuple, GameState]:
    """Per (battle, position), or per (battle, member, position) for a panel."""
    attempts: dict[tuple, int] = defaultdict(int)
    ok: dict[tuple, Judgment] = {}
    for j in judgments:
        key = (j.battle_id, j.judge, j.position) if panel else (j.battle_id, j.position)
        attempts[key] = max(attempts[key], j.attempt + 1)
        if j.parse_ok and key not in ok:
            ok[key] = j
    return {k: GameState(ok.get(k), n) for k, n in attempts.items()}


@dataclass
class LedgerIndex:
    """What the ledger holds, without any text: which answers exist (or are missing for good) and how many
    attempts each game had. Enough to decide what is left while holding no answer or verdict in memory; a
    battle whose two games both parsed (nearly all of them) costs one battle id."""

    answered: set[tuple[str, str]] = field(default_factory=set)       # (instruction_id, model)
    unanswerable: set[tuple[str, str]] = field(default_factory=set)   # recorded with an error
    judged: set[str] = field(default_factory=set)                     # battle ids with every game parsed
    games: dict[tuple[str, str, int], tuple[int, bool]] = field(default_factory=dict)  # the rest: (attempts, parsed)
    judges: tuple[str, ...] = ()                                      # a panel's members; () for one judge

    @property
    def members(self) -> tuple[str, ...]:
        return self.judges or ("",)

    def add_answers(self, instruction_ids: Iterable[str], models: Iterable[str], errors: Iterable) -> None:
        for iid, model, error in zip(instruction_ids, models, errors):
            key = (sys.intern(iid), sys.intern(model))  # one string per instruction, not per answer
            self.answered.add(key)
            if error:
                self.unanswerable.add(key)

    def add_games(self, battle_ids: Iterable[str], positions: Iterable[int], attempts: Iterable[int],
                  parsed: Iterable[bool], judges: Optional[Iterable[str]] = None) -> None:
        """`judges`: each row's judge (needed for a panel only)."""
        rows = zip(battle_ids, judges if self.judges else itertools.repeat(""), positions, attempts, parsed)
        every = [(m, pos) for m in self.members for pos in (0, 1)]
        for battle, judge, position, attempt, ok in rows:
            if battle in self.judged:
                continue
            before, was_ok = self.games.get((battle, judge, position), (0, False))
            self.games[(battle, judge, position)] = (max(before, attempt + 1), was_ok or bool(ok))
            if ok and all(self.games.get((battle, m, pos), (0, False))[1] for m, pos in every):
                for m, pos in every:
                    del self.games[(battle, m, pos)]
                self.judged.add(battle)

    def game(self, battle_id: str, position: int, judge: str = "") -> tuple[int, bool]:
        """(attempts so far, parsed); a judged game's attempt count is not kept (it is settled anyway)."""
        if battle_id in self.judged:
            return 1, True
        return self.games.get((battle_id, judge, position), (0, False))

    @classmethod
    def of(cls, generations: Iterable[Generation], judgments: Iterable[Judgment],
           judges: tuple[str, ...] = ()) -> "LedgerIndex":
        index = cls(judges=judges)
        generations, judgments = list(generations), list(judgments)
        index.add_answers([g.instruction_id for g in generations], [g.model for g in generations],
                          [g.error for g in generations])
        index.add_games([j.battle_id for j in judgments], [j.position for j in judgments],
                        [j.attempt for j in judgments], [j.parse_ok for j in judgments], [j.judge for j in judgments])
        return index


@dataclass(frozen=True, slots=True)
class Game:
    """One game still to judge: a battle with the answers in one order, and the attempt it is at."""

    battle: PlannedBattle
    position: int   # 0: model_a shown first
    attempt: int
    judge: str = ""   # the panel member that judges it ("": the one judge)


@dataclass
class InstructionWork:
    instruction_id: str
    games: list[Game]                             # still to judge
    to_answer: list[str]                          # models whose answer is still to be generated


def instruction_work(battles: Sequence[PlannedBattle], index: LedgerIndex, max_attempts: int) -> InstructionWork:
    """One instruction's games still to judge, and the answers they still need."""
    games = []
    for pb in battles:
        if (pb.instruction_id, pb.model_a) in index.unanswerable or \
                (pb.instruction_id, pb.model_b) in index.unanswerable:
            continue  # settled as failed: a recorded answer is missing for good
        for judge in index.members:
            for pos in (0, 1):
                attempts, parsed = index.game(pb.battle_id, pos, judge)
                if not parsed and attempts < max_attempts:
                    games.append(Game(pb, pos, attempts, judge))
    needed = {m: None for g in games for m in (g.battle.model_a, g.battle.model_b)
              if (pb.instruction_id, m) not in index.answered}  # an ordered set
    return InstructionWork(battles[0].instruction_id if battles else "", games, list(needed))


def remaining(plan: BattlePlan, index: LedgerIndex, max_attempts: int) -> Iterator[InstructionWork]:
    """The instructions that still have games to judge, in plan order, made one at a time."""
    for iid in plan.instruction_ids:
        work = instruction_work(plan.for_instruction(iid), index, max_attempts)
        if work.games:
            yield work


@dataclass
class Tally:
    battles: list[Battle] = field(default_factory=list)
    inconsistent: int = 0       # games disagreed (kept or discarded per rule)
    discarded: int = 0          # left out by disagreement=discard
    failed_battles: int = 0     # a game failed after all attempts, or an answer was missing
    failed_by_model: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending: int = 0            # not settled yet (an interrupted run)


def tally(plan: Iterable[PlannedBattle], judgments: Iterable[Judgment], generations: Iterable[Generation], *,
          max_attempts: int, disagreement: str, tie_margin: float, use_weighted: bool,
          judges: tuple[str, ...] = (), panel_rule: str = "mean") -> Tally:
    """Combine settled games into battles; count what failed (never silently a tie). A panel's battle is its
    members' battles combined by `panel_rule`; it fails if any member's does (never decided by fewer judges)."""
    states = game_states(judgments, panel=bool(judges))
    missing = {(g.instruction_id, g.model) for g in generations if g.error}
    out = Tally()
    for pb in plan:
        if (pb.instruction_id, pb.model_a) in missing or (pb.instruction_id, pb.model_b) in missing:
            _fail(out, pb)
            continue
        keys = [(pb.battle_id, m, pos) if judges else (pb.battle_id, pos) for m in judges or ("",) for pos in (0, 1)]
        games = [states.get(k) for k in keys]
        if any(g is None or not g.settled(max_attempts) for g in games):
            out.pending += 1
            continue
        if any(g.ok is None for g in games):
            _fail(out, pb)
            continue
        members = [combine_games(games[k].ok, games[k + 1].ok, disagreement=disagreement, tie_margin=tie_margin,
                                 use_weighted=use_weighted) for k in range(0, len(games), 2)]
        if any(b is None for b in members):
            out.discarded += 1
            out.inconsistent += 1
            continue
        battle = combine_panel(members, panel_rule, tie_margin) if judges else members[0]
        out.inconsistent += not battle.consistent
        out.battles.append(battle)
    return out


def _fail(out: Tally, pb: PlannedBattle) -> None:
    out.failed_battles += 1
    out.failed_by_model[pb.model_a] += 1
    out.failed_by_model[pb.model_b] += 1
