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
    with their product, and the coordinator actor receives a few ids instead of one record per battle."""

    instruction_ids: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    judge: str
    prompt_version: str

    def for_instruction(self, iid: str) -> list[PlannedBattle]:
        return [PlannedBattle(battle_id(iid, a, b, self.judge, self.prompt_version), iid, a, b) for a, b in self.pairs]

    def __iter__(self) -> Iterator[PlannedBattle]:
        """Instruction-major order, so that an instruction's battles become judgeable together."""
        for iid in self.instruction_ids:
            yield from self.for_instruction(iid)

    def __len__(self) -> int:
        return len(self.instruction_ids) * len(self.pairs)
