"""Reward sources for RL: a trained reward model (Ray actor), the judge deployment with a single-answer
rubric (0-5, scaled to 0-1), or the judge comparing each answer with a reference answer (pairwise, both
orders). A rollout no source could score stays unrewarded and is left out of the step."""
from __future__ import annotations

import asyncio
from typing import Optional

from arena_ray.judging.parse import SCORE_MAX, SCORE_MIN, parse_pairwise
from arena_ray.judging.prompts import cut_answer
from arena_ray.judging.verdict import rubric_score
from arena_ray.records import GenerationRequest, SamplingSpec
from arena_ray.records.rl import Rollout
from arena_ray.serving.retry import RequestFailed, RetryPolicy, request


class RewardModelScorer:
    """An HF sequence-classification reward model (e.g. the flywheel's rm stage; TRL RewardTrainer output)."""

    def __init__(self, path: str, max_length: int):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.max_length = max_length

    def _text(self, prompt: str, answer: str) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                                       {"role": "assistant", "content": answer}], tokenize=False)
        return f"{prompt}\n\n{answer}"

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        texts = [self._text(p, a) for p, a in pairs]
        with self.torch.no_grad():
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
            return self.model(**enc).logits[:, 0].float().tolist()


class JudgeReward:
    """The judge deployment scores each answer with a single-answer rubric (0-5, scaled to 0-1). A judgment
    without a score is asked again (sampling on); transport failures go through the retrying request path."""

    def __init__(self, client, template, reward_cfg, timeout_s: float):
        self.client, self.template, self.cfg = client, template, reward_cfg
        self.policy = RetryPolicy(timeout_s=timeout_s, max_retries=3, backoff_s=1.0)

    async def _one(self, r: Rollout) -> Optional[float]:
        for attempt in range(self.cfg.judge_max_attempts):
            sampling = SamplingSpec(max_tokens=self.cfg.judge_max_tokens, seed=attempt,
                                    temperature=self.cfg.judge_temperature if attempt == 0 else 0.7,
                                    regex=self.template.output_regex if self.cfg.constrain_format else None)
            req = GenerationRequest(f"reward-{r.prompt_id}-{r.sample}-{r.weight_version}-{attempt}",
                                    self.template.messages(r.prompt, r.text), sampling)
            try:
                completion = await request(self.client, req, self.policy)
            except RequestFailed:
                return None
            score = rubric_score(completion.text)
            if score is not None:
                return score / 5.0
        return None

    async def score(self, rollouts: list[Rollout]) -> list[Optional[float]]:
        return list(await asyncio.gather(*(self._one(r) for r in rollouts)))


class PairwiseJudgeReward:
    """Arena Learning's judge as the reward: each answer against a reference answer to the same prompt (the
    strongest competitor's, in the flywheel), judged in both orders under the pairwise template, so the
    position bias cancels. Reward = mean over the parsed orders of (policy score - reference score) / 9, in
    [-1, 1]; a prompt without a reference, or no parsed order, leaves the rollout unrewarded."""

    def __init__(self, client, template, references: dict[str, str], reward_cfg, max_answer_chars: int,
                 timeout_s: float):
        self.client, self.template, self.refs, self.cfg = client, template, references, reward_cfg
        self.max_chars = max_answer_chars
        self.policy = RetryPolicy(timeout_s=timeout_s, max_retries=3, backoff_s=1.0)

    async def _order(self, r: Rollout, reference: str, policy_first: bool) -> Optional[float]:
        answers = (r.text, reference) if policy_first else (reference, r.text)
        shown = tuple(cut_answer(a, self.max_chars) for a in answers)
        for attempt in range(self.cfg.judge_max_attempts):
            sampling = SamplingSpec(max_tokens=self.cfg.judge_max_tokens, seed=attempt,
                                    temperature=self.cfg.judge_temperature if attempt == 0 else 0.7,
                                    regex=self.template.output_regex if self.cfg.constrain_format else None)
            key = f"pairwise-{r.prompt_id}-{r.sample}-{r.weight_version}-{int(policy_first)}-{attempt}"
            req = GenerationRequest(key, self.template.messages(r.prompt, *shown), sampling)
            try:
                completion = await request(self.client, req, self.policy)
            except RequestFailed:
                return None
            v = parse_pairwise(completion.text, self.template.score_line)
            if v.ok:
                mine, theirs = (v.score_1, v.score_2) if policy_first else (v.score_2, v.score_1)
                return (mine - theirs) / (SCORE_MAX - SCORE_MIN)
        return None

    async def _one(self, r: Rollout) -> Optional[float]:
        reference = self.refs.get(r.prompt_id)
        if reference is None:
            return None
        both = [d for d in await asyncio.gather(self._order(r, reference, True), self._order(r, reference, False))
                if d is not None]
        return sum(both) / len(both) if both else None

    async def score(self, rollouts: list[Rollout]) -> list[Optional[float]]:
        return list(await asyncio.gather(*(self._one(r) for r in rollouts)))
