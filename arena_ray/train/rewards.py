"""Reward sources for RL: a trained reward model (Ray actor), or the judge deployment with a single-answer
rubric (0-5, scaled to 0-1). A rollout no source could score stays unrewarded and is left out of the step."""
from __future__ import annotations

import asyncio
from typing import Optional

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
