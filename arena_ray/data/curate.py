"""Arena Learning's data flywheel, curation step: battles → SFT examples, DPO pairs, reward-model pairs and
PPO prompts for a target model. Pure (no ray, vllm or torch).

- SFT: instructions where the target lost by a judge-score gap >= sft_gap; the winner's answer is the
  target (one example per instruction: the best-scored winner). The paper found a gap of 3.0 best.
- DPO: battles of the target with gap >= dpo_gap; chosen = the winner's answer, rejected = the loser's.
- Reward model: any battle (not only the target's) with gap >= rm_gap, same orientation.
- PPO prompts: every instruction the target battled on.
Ties never become training data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from arena_ray.records import Battle, PreferencePair, SFTExample


@dataclass(frozen=True)
class Thresholds:
    sft_gap: float = 3.0
    dpo_gap: float = 2.0
    rm_gap: float = 2.0


@dataclass
class Curated:
    sft: list[SFTExample] = field(default_factory=list)
    dpo: list[PreferencePair] = field(default_factory=list)
    rm: list[PreferencePair] = field(default_factory=list)
    ppo_prompts: list[tuple[str, str]] = field(default_factory=list)  # (instruction_id, prompt)


def _sides(b: Battle) -> tuple[str, str, float]:
    """(winner, loser, gap) of a decided battle."""
    if b.winner == "model_a":
        return b.model_a, b.model_b, b.score_a - b.score_b
    return b.model_b, b.model_a, b.score_b - b.score_a


def _pair(b: Battle, prompts, answers) -> PreferencePair:
    win, lose, gap = _sides(b)
    q = b.question_id
    return PreferencePair(q, prompts[q], answers[(q, win)], answers[(q, lose)], win, lose, b.battle_id, gap)


@dataclass
class Selection:
    """Which battles feed each kind of data; the rules live here once, for curation and for counting."""

    sft: dict[str, Battle] = field(default_factory=dict)  # per instruction: the best-scored winner over the target
    dpo: list[Battle] = field(default_factory=list)
    rm: list[Battle] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)      # every instruction the target battled on


def select(battles: Sequence[Battle], target: str, thresholds: Thresholds) -> Selection:
    out = Selection()
    seen_prompts: dict[str, None] = {}
    for b in battles:
        involved = target in (b.model_a, b.model_b)
        if involved:
            seen_prompts.setdefault(b.question_id)
        if b.winner not in ("model_a", "model_b"):
            continue
        _, lose, gap = _sides(b)
        if gap >= thresholds.rm_gap:
            out.rm.append(b)
        if not involved:
            continue
        if gap >= thresholds.dpo_gap:
            out.dpo.append(b)
        if lose == target and gap >= thresholds.sft_gap:
            best = out.sft.get(b.question_id)
            if best is None or max(b.score_a, b.score_b) > max(best.score_a, best.score_b):
                out.sft[b.question_id] = b
    out.prompts = list(seen_prompts)
    return out


def curate(battles: Sequence[Battle], prompts: Mapping[str, str], answers: Mapping[tuple[str, str], str],
           target: str, thresholds: Thresholds = Thresholds()) -> Curated:
    chosen = select(battles, target, thresholds)
    out = Curated(rm=[_pair(b, prompts, answers) for b in chosen.rm],
                  dpo=[_pair(b, prompts, answers) for b in chosen.dpo],
                  ppo_prompts=[(q, prompts[q]) for q in chosen.prompts])
    for q, b in chosen.sft.items():
        win, _, gap = _sides(b)
        out.sft.append(SFTExample(q, prompts[q], answers[(q, win)], win, b.battle_id, gap))
    return out


def counts_by_threshold(battles: Sequence[Battle], target: str, gaps: Sequence[float] = (0, 1, 2, 3, 4, 5)) -> list[dict]:
    """How much SFT / DPO / RM data each gap threshold would keep (the paper's threshold study)."""
    rows = []
    for g in gaps:
        chosen = select(battles, target, Thresholds(sft_gap=g, dpo_gap=g, rm_gap=g))
        rows.append({"gap": g, "sft": len(chosen.sft), "dpo": len(chosen.dpo), "rm": len(chosen.rm)})
    return rows
