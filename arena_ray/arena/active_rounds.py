"""`arena.pairing: active`, round by round: every pair once, then — refitting the ratings on what is settled —
the battles that shrink the ranking's uncertainty most (rating/active.py), until every pair is settled (its
intervals apart, or it is certainly closer than the resolution) or the battle budget is spent.

Each round's battles are appended to run_dir/active_rounds.jsonl before they are fought, so a resumed run
fights an interrupted round to its end first and then goes on choosing from the same ledger.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from arena_ray.arena.pairing import BattlePlan, assign_instructions
from arena_ray.rating.active import PairState, estimate, propose, settled
from arena_ray.records import Battle
from arena_ray.settings.arena import ActiveConfig

log = logging.getLogger(__name__)
ROUNDS = "active_rounds.jsonl"


def rounds_of(run_dir: Path) -> list[list[tuple[str, str, str]]]:
    """The recorded rounds (a torn last line — a crash while recording — is a round never fought)."""
    path = Path(run_dir) / ROUNDS
    out = []
    lines = path.read_text().splitlines() if path.exists() else []
    for k, line in enumerate(lines):
        try:
            out.append([tuple(b) for b in json.loads(line)["battles"]])
        except (json.JSONDecodeError, KeyError, TypeError):
            if k == len(lines) - 1:
                break
            raise
    return out


def recorded_plan(run_dir: Path, base: BattlePlan) -> BattlePlan:
    """Every battle chosen so far, as a plan (empty before the first round)."""
    return base.with_battles([b for r in rounds_of(run_dir) for b in r])


def record_round(run_dir: Path, battles: Sequence[tuple[str, str, str]]) -> None:
    with (Path(run_dir) / ROUNDS).open("a") as fh:
        fh.write(json.dumps({"round": len(rounds_of(run_dir)), "battles": [list(b) for b in battles]}) + "\n")


def state_of(battles: Sequence[Battle], competitors: Sequence[str]) -> PairState:
    index = {m: i for i, m in enumerate(competitors)}
    state = PairState(len(competitors))
    share = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}
    pairs, shares = [], []
    for b in battles:
        if b.model_a not in index or b.model_b not in index:
            continue
        i, j = index[b.model_a], index[b.model_b]
        pairs.append(state.index(i, j))
        shares.append(share[b.winner] if i < j else 1 - share[b.winner])
    if pairs:
        state.add(np.array(pairs), np.array(shares))
    return state


def next_round(plan: BattlePlan, battles: Sequence[Battle], competitors: Sequence[str],
               instruction_ids: Sequence[str], cfg: ActiveConfig, batch: int,
               max_battles: Optional[int]) -> list[tuple[str, str, str]]:
    """The battles of the next round; [] when every pair is settled, the budget is spent or no instruction is
    left for the pairs that still matter."""
    budget = max_battles - len(plan) if max_battles is not None else batch
    if budget <= 0:
        return []
    used: dict[tuple[str, str], set[str]] = {}
    for pb in plan:
        used.setdefault((pb.model_a, pb.model_b), set()).add(pb.instruction_id)
    pairs_all = [tuple(sorted((a, b))) for k, a in enumerate(competitors) for b in competitors[k + 1:]]
    if not len(plan):   # the first round: every pair once
        return assign_instructions(pairs_all[:budget], instruction_ids, used)
    state = state_of(battles, competitors)
    per_model = np.bincount(state.pa, state.n, state.m) + np.bincount(state.pb, state.n, state.m)
    if (per_model == 0).any():
        return []  # a model without a settled battle (its answers failed): nothing to choose from
    est = estimate(state)
    if settled(est, state, cfg.resolution).all():
        return []
    rng = np.random.default_rng([cfg.seed, len(plan)])
    chosen = propose("focus", state, min(batch, budget), rng, cfg.resolution)
    proposed = [(competitors[state.pa[c]], competitors[state.pb[c]]) for c in chosen]
    return assign_instructions(proposed, instruction_ids, used)
