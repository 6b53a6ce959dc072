"""Self-Rewarding LMs' preference pairs from the model's own rubric scores. Pure (no ray, vllm or torch).

Each prompt has N sampled answers; each answer has up to K rubric judgments (0-5, None when the judge wrote no
score). An answer's reward is the mean of its parsed judgments. The best and the worst answer of a prompt form
a pair; equal rewards (a gap <= min_gap) are a tie and dropped, as are prompts with fewer than two scored answers.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence


@dataclass(frozen=True)
class ScoredSample:
    instruction_id: str
    prompt: str
    sample: int
    text: str
    scores: tuple[Optional[float], ...]   # one per judgment; None: no score could be parsed

    @property
    def reward(self) -> Optional[float]:
        parsed = [s for s in self.scores if s is not None]
        return sum(parsed) / len(parsed) if parsed else None


@dataclass(frozen=True)
class SelfPair:
    instruction_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float


@dataclass(frozen=True)
class PairOutcome:
    pairs: list[SelfPair]
    dropped_ties: int
    dropped_unscored: int

    def report(self, samples: Sequence[ScoredSample]) -> dict:
        judgments = [s for x in samples for s in x.scores]
        rewards = [x.reward for x in samples if x.reward is not None]
        return {"prompts": len({x.instruction_id for x in samples}), "samples": len(samples),
                "pairs_kept": len(self.pairs), "dropped_ties": self.dropped_ties,
                "dropped_unscored": self.dropped_unscored,
                "judgments": len(judgments), "judgments_unparsed": sum(s is None for s in judgments),
                "score_histogram": histogram(s for s in judgments if s is not None),
                "mean_reward": round(sum(rewards) / len(rewards), 3) if rewards else None,
                "mean_pair_gap": round(sum(p.chosen_score - p.rejected_score for p in self.pairs) / len(self.pairs), 3)
                if self.pairs else None}


def histogram(scores: Iterable[float]) -> dict[str, int]:
    """Counts of each whole rubric score 0..5 (weighted scores are rounded)."""
    counts = Counter(int(round(s)) for s in scores)
    return {str(k): counts.get(k, 0) for k in range(6)}


def select_pairs(samples: Sequence[ScoredSample], min_gap: float = 0.0) -> PairOutcome:
    by_prompt: dict[str, list[ScoredSample]] = {}
    for s in samples:
        by_prompt.setdefault(s.instruction_id, []).append(s)
    pairs, ties, unscored = [], 0, 0
    for iid in sorted(by_prompt):
        scored = sorted((s for s in by_prompt[iid] if s.reward is not None and s.text.strip()),
                        key=lambda s: (s.reward, -s.sample))
        if len(scored) < 2:
            unscored += 1
            continue
        worst, best = scored[0], scored[-1]
        if best.reward - worst.reward <= min_gap or best.text == worst.text:
            ties += 1
            continue
        pairs.append(SelfPair(iid, best.prompt, best.text, worst.text, best.reward, worst.reward))
    return PairOutcome(pairs, ties, unscored)
