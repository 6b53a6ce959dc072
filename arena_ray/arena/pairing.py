"""Which battles to fight, and their deterministic ids. Pure."""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence


@dataclass(frozen=True, slots=True)
class PlannedBattle:
    battle_id: str
    instruction_id: str
    model_a: str  # model_a < model_b: a battle's id does not depend on who was named first
    model_b: str


def battle_id(instruction_id: str, model_x: str, model_y: str, judge: str, prompt_version: str) -> str:
    if model_x == model_y:
        raise ValueError(f"a model cannot battle itself: {model_x}")
    a, b = sorted((model_x, model_y))
    key = "\x1f".join((instruction_id, a, b, judge, prompt_version))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def model_pairs(competitors: Sequence[str], pairing: str, target: Optional[str] = None) -> list[tuple[str, str]]:
    """all_pairs: every unordered pair; target_vs_all: the target against each other competitor."""
    if pairing == "all_pairs":
        pairs = itertools.combinations(competitors, 2)
    elif pairing == "target_vs_all":
        if target not in competitors:
            raise ValueError(f"target '{target}' is not a competitor")
        pairs = ((target, other) for other in competitors if other != target)
    else:
        raise ValueError(f"unknown pairing '{pairing}'")
    return [tuple(sorted(p)) for p in pairs]


@dataclass(frozen=True)
class BattlePlan:
    """Every battle of an arena, made on demand instead of held: memory grows with instructions + pairs, not
    with their product, and the coordinator actor receives a few ids instead of one record per battle.
    `chosen`, where given, lists the pairs of each instruction explicitly (active pairing, a battle budget);
    otherwise every instruction has every pair."""

    instruction_ids: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    judge: str
    prompt_version: str
    chosen: Optional[tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = None

    def __post_init__(self):
        object.__setattr__(self, "_chosen", dict(self.chosen) if self.chosen is not None else None)

    def pairs_of(self, iid: str) -> tuple[tuple[str, str], ...]:
        return self._chosen.get(iid, ()) if self._chosen is not None else self.pairs

    def for_instruction(self, iid: str) -> list[PlannedBattle]:
        return [PlannedBattle(battle_id(iid, a, b, self.judge, self.prompt_version), iid, a, b)
                for a, b in self.pairs_of(iid)]

    def __iter__(self) -> Iterator[PlannedBattle]:
        """Instruction-major order, so that an instruction's battles become judgeable together."""
        for iid in self.instruction_ids:
            yield from self.for_instruction(iid)

    def __len__(self) -> int:
        if self.chosen is not None:
            return sum(len(p) for _, p in self.chosen)
        return len(self.instruction_ids) * len(self.pairs)

    def capped(self, max_battles: Optional[int]) -> "BattlePlan":
        """The first `max_battles` battles in plan order (a budget); the plan itself where it fits."""
        if max_battles is None or len(self) <= max_battles:
            return self
        return self.with_battles([(pb.instruction_id, pb.model_a, pb.model_b)
                                  for pb, _ in zip(self, range(max_battles))])

    def with_battles(self, battles: Sequence[tuple[str, str, str]]) -> "BattlePlan":
        """A plan of exactly these (instruction, model, model) battles, in instruction order."""
        by_iid: dict[str, list[tuple[str, str]]] = {}
        for iid, a, b in battles:
            by_iid.setdefault(iid, []).append(tuple(sorted((a, b))))
        order = tuple(i for i in self.instruction_ids if i in by_iid)
        return BattlePlan(order, self.pairs, self.judge, self.prompt_version,
                          tuple((i, tuple(dict.fromkeys(by_iid[i]))) for i in order))


def assign_instructions(pairs: Sequence[tuple[str, str]], instruction_ids: Sequence[str],
                        used: dict[tuple[str, str], set[str]]) -> list[tuple[str, str, str]]:
    """Each proposed pair battles on the first instruction it has not battled on yet (earlier instructions
    first, so models keep answering the same prompts and their answers are reused across pairs); `used` is
    updated. A pair that has battled on every instruction is dropped."""
    out = []
    for a, b in pairs:
        key = tuple(sorted((a, b)))
        seen = used.setdefault(key, set())
        iid = next((i for i in instruction_ids if i not in seen), None)
        if iid is not None:
            seen.add(iid)
            out.append((iid, *key))
    return out
