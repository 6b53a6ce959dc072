"""The records an RL step moves between the serving deployment, the reward source and the learner."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Rollout:
    prompt_id: str
    sample: int
    prompt: str
    text: str
    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    # The sampler's (vLLM's) logprob of each generated token: compared with the learner's (mismatch metric).
    token_logprobs: Optional[tuple[float, ...]]
    weight_version: int
    reward: Optional[float] = None
    advantage: float = 0.0


@dataclass(frozen=True)
class StepStats:
    step: int
    version: int          # the learner's weight version after this step
    rollouts: int
    loss: float
    policy_loss: float
    kl: float
    clip_fraction: float
    grad_norm: float
    sampler_logprob_gap: Optional[float]   # mean |vLLM logprob - learner logprob| on the rollout tokens
    stale_dropped: int
