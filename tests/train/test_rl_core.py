"""RL's core without a cluster: group advantages (pure), the clipped loss with its KL term, and the learner's
step on a tiny random policy — the reward signal reaches the loss, the weights move, stale rollouts are left
out."""
from __future__ import annotations

import pytest
import torch

from arena_ray.errors import TrainingError
from arena_ray.records.rl import Rollout
from arena_ray.train.ppo_learner import PolicyLearner, policy_loss
from arena_ray.train.rl_math import advantages


def test_group_advantages():
    rewards, groups = [1.0, 0.0, 0.5, 0.5, 3.0], ["a", "a", "b", "b", "c"]
    grpo = advantages(rewards, groups, "grpo")
    assert grpo[0] == pytest.approx(0.7071, abs=1e-3) and grpo[1] == pytest.approx(-0.7071, abs=1e-3)
    assert grpo[2:] == [0.0, 0.0, 0.0]  # equal rewards: no signal; a lone sample: no baseline
    assert advantages([1.0, 0.0, 0.5], ["a"] * 3, "rloo") == [0.75, -0.75, 0.0]
    assert advantages([1.0, 0.0, 0.5], ["a", "b", "c"], "reinforce") == [0.5, -0.5, 0.0]
    with pytest.raises(ValueError):
        advantages([1.0], ["a", "b"], "grpo")


def test_loss_follows_the_advantage_and_kl():
    logp = torch.tensor([[-1.0, -2.0], [-1.5, -0.5]], requires_grad=True)
    old = logp.detach().clone()
    mask = torch.ones_like(logp, dtype=torch.bool)
    zero, parts = policy_loss(logp, old, old, torch.zeros(2), mask, 0.2, 0.1)
    assert float(zero) == 0.0 and parts["kl"] == 0.0   # no advantage, at the reference: nothing to learn
    loss, _ = policy_loss(logp, old, old, torch.tensor([1.0, -1.0]), mask, 0.2, 0.0)
    loss.backward()
    # Gradient descent raises the logprobs of the advantaged sample and lowers the other's.
    assert (logp.grad[0] < 0).all() and (logp.grad[1] > 0).all()
    _, far = policy_loss(old + 0.5, old, old, torch.zeros(2), mask, 0.2, 1.0)
    assert far["kl"] > 0 and far["clip_fraction"] == 1.0


def rollouts(version: int, rewards: list[float], n_tokens: int = 6) -> list[Rollout]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for i, a in enumerate(rewards):
        ids = torch.randint(10, 400, (n_tokens,), generator=gen).tolist()
        out.append(Rollout(f"p{i // 2}", i % 2, "q", "a", (1, 2, 3), tuple(ids), None, version, advantage=a))
    return out


def snapshot(learner) -> dict:
    return {k: v.detach().clone() for k, v in learner.policy.state_dict().items()}


def changed(before: dict, learner) -> float:
    return max(float((learner.policy.state_dict()[k] - v).abs().max()) for k, v in before.items())


@pytest.fixture()
def learner(tiny_model_dir):
    return PolicyLearner(str(tiny_model_dir), {"policy": "tiny", "learning_rate": 1e-3, "kl_coef": 0.0,
                                                "micro_batch_size": 2})


def test_reward_signal_reaches_the_loss_and_moves_the_policy(learner):
    before = snapshot(learner)
    stats = learner.step(1, rollouts(0, [0.0, 0.0, 0.0, 0.0]))
    assert changed(before, learner) == 0.0 and stats.loss == 0.0   # all-zero advantages: no update
    learner.version = 0
    batch = rollouts(0, [1.0, -1.0, 1.0, -1.0])
    before_logp = learner.logprobs(batch)
    stats = learner.step(1, batch)
    assert stats.version == 1 and stats.rollouts == 4 and stats.grad_norm > 0
    assert changed(before, learner) > 0
    after = learner.logprobs(batch)
    gain = [sum(a) - sum(b) for a, b in zip(after, before_logp)]
    assert gain[0] > 0 and gain[1] < 0   # advantaged answers became likelier, the others less likely


def test_stale_rollouts_are_dropped_and_counted(learner):
    batch = rollouts(0, [1.0, -1.0]) + rollouts(5, [1.0, -1.0])
    stats = learner.step(1, batch)
    assert stats.rollouts == 2 and stats.stale_dropped == 2
    with pytest.raises(TrainingError, match="no fresh rollouts"):
        learner.step(2, rollouts(0, [1.0, -1.0]))   # the learner is at version 1 now
