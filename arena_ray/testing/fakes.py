"""Instant fake engines for unit tests of the logic around engines, and for load benchmarks.

They implement the same Engine interface as the real ones and can be deployed as Serve applications
(`engine_factories`), so scheduling, retries and the ledger are exercised without model start-up costs.
"""
from __future__ import annotations

import asyncio
import re

from arena_ray.records import Completion, GenerationRequest

# pairwise-v1, pairwise-v3-fenced and pairwise-multiturn-v1 (whose markers carry a nonce) layouts
_ANSWER = re.compile(r"\[The Start of Assistant (\d)'s Answers?(?: [0-9a-f]+)?\]\n(.*?)\n+\[The End of Assistant", re.S)


class EchoEngine:
    """Answers with the instruction repeated `repeat` times: a model's 'quality' is its repeat count."""

    def __init__(self, cfg=None, repeat: int = 1, delay_s: float = 0.0):
        self.repeat, self.delay_s = repeat, delay_s
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = " ".join([request.messages[-1].content] * self.repeat)
        return Completion(text=text, prompt_tokens=10, completion_tokens=len(text.split()), finish_reason="stop",
                          latency_s=self.delay_s)


class LengthJudge:
    """A pairwise judge (pairwise-v1 / v3-fenced layout) that prefers the longer answer: scores 1-10 by length rank.

    `garbage_first`: the first attempt of every game returns unparsable text (exercises parse retries).
    """

    def __init__(self, cfg=None, garbage_first: bool = False, delay_s: float = 0.0):
        self.garbage_first, self.delay_s = garbage_first, delay_s
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.garbage_first and request.request_id.endswith("-0"):
            return Completion("I refuse to score.", 10, 4, "stop", 0.0)
        answers = dict(_ANSWER.findall(request.messages[-1].content))
        n1, n2 = len(answers.get("1", "")), len(answers.get("2", ""))
        s1, s2 = (8, 4) if n1 > n2 else (4, 8) if n2 > n1 else (6, 6)
        text = f"{s1} {s2}\nAssistant {'1' if s1 >= s2 else '2'} gave the longer answer."
        return Completion(text, 100, len(text.split()), "stop", 0.0)


class FlakyEngine:
    """Wraps an engine; raises on the calls listed in `fail_calls` (1-based), like a dying replica."""

    def __init__(self, inner, fail_calls=(1,)):
        self.inner, self.fail_calls, self.calls = inner, set(fail_calls), 0

    async def generate(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise ConnectionError(f"injected failure on call {self.calls}")
        return await self.inner.generate(request)


class RubricLengthJudge:
    """A single-answer rubric judge (rubric-additive-v1 layout): Score = number of words in the response, max 5."""

    _RESPONSE = re.compile(r"<response>(.*?)</response>", re.S)

    def __init__(self, cfg=None, garbage_first: bool = False):
        self.garbage_first, self.calls = garbage_first, 0

    async def generate(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if self.garbage_first and self.calls == 1:
            return Completion("I cannot judge.", 10, 3, "stop", 0.0)
        match = self._RESPONSE.search(request.messages[-1].content)
        words = len(match.group(1).split()) if match else 0
        return Completion(f"Counted the words.\nScore: {min(words, 5)}", 100, 6, "stop", 0.0)
