"""The pairwise judge as an RL reward: both orders asked, position bias cancels, unparsed orders retried, and a
prompt without a reference answer stays unrewarded."""
from __future__ import annotations

import asyncio

import pytest

from arena_ray.judging.prompts import load_template
from arena_ray.records import Completion
from arena_ray.records.rl import Rollout
from arena_ray.settings.ppo import RewardConfig
from arena_ray.testing.fakes import LengthJudge
from arena_ray.train.rewards import PairwiseJudgeReward


class FirstSeatJudge(LengthJudge):
    """Prefers the longer answer, and adds 2 points to whichever answer it is shown first."""

    async def generate(self, request):
        c = await super().generate(request)
        s1, s2 = (int(x) for x in c.text.split("\n")[0].split())
        return Completion(f"{min(s1 + 2, 10)} {s2}\nbiased", 100, 3, "stop", 0.0)


def rollout(prompt_id: str, text: str) -> Rollout:
    return Rollout(prompt_id, 0, "Name a colour.", text, (), (), None, 0)


def scorer(judge, **cfg) -> PairwiseJudgeReward:
    return PairwiseJudgeReward(judge, load_template("pairwise-v1"), {"p": "red"}, RewardConfig(source="pairwise",
                               **cfg), max_answer_chars=4000, timeout_s=5)


def test_both_orders_cancel_the_judges_first_seat_bias():
    judge = FirstSeatJudge()
    longer, shorter = asyncio.run(scorer(judge).score([rollout("p", "a deep crimson red"), rollout("p", "")]))
    # Longer than the reference: 8 vs 4 (+2 when first) → ((10-4) + (8-6)) / 2 / 9; the bias is gone.
    assert longer == pytest.approx(4 / 9)
    assert shorter == pytest.approx(-4 / 9)
    assert judge.calls == 4  # two orders per rollout


def test_unparsed_orders_are_asked_again_and_no_reference_means_no_reward():
    judge = LengthJudge(garbage_first=True)
    rewards = asyncio.run(scorer(judge, judge_max_attempts=2).score([rollout("p", "a deep crimson red"),
                                                                      rollout("unknown", "blue")]))
    assert rewards == [pytest.approx(4 / 9), None]
    assert judge.calls == 4  # garbage, then a verdict, in each order; nothing asked for the unknown prompt
    never = asyncio.run(scorer(LengthJudge(garbage_first=True), judge_max_attempts=1).score([rollout("p", "x")]))
    assert never == [None]
