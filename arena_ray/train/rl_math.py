"""Critic-free advantages for policy-gradient RL over groups of samples per prompt. Pure (no torch).

grpo       (r - mean of the group) / (std of the group + eps)          (DeepSeekMath's GRPO)
rloo       r - mean of the *other* samples of the group                 (Ahmadian et al.'s RLOO)
reinforce  r - mean of the whole batch                                  (REINFORCE with a batch baseline)
A group whose rewards are all equal gives zero advantages: nothing to learn from it.
"""
from __future__ import annotations

import math
from typing import Sequence


def advantages(rewards: Sequence[float], groups: Sequence[str], estimator: str, eps: float = 1e-6) -> list[float]:
    if len(rewards) != len(groups):
        raise ValueError("rewards and groups differ in length")
    if estimator == "reinforce":
        mean = sum(rewards) / len(rewards) if rewards else 0.0
        return [r - mean for r in rewards]
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out = [0.0] * len(rewards)
    for idx in members.values():
        values = [rewards[i] for i in idx]
        n, total = len(values), sum(values)
        if n < 2:
            continue  # a lone sample has no baseline in its group: no signal
        mean = total / n
        if estimator == "grpo":
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
            for i in idx:
                out[i] = (rewards[i] - mean) / (std + eps) if std > 0 else 0.0
        elif estimator == "rloo":
            for i in idx:
                out[i] = rewards[i] - (total - rewards[i]) / (n - 1)
        else:
            raise ValueError(f"unknown advantage estimator '{estimator}'")
    return out
