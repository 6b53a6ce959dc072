"""The model answers and judges itself, on one Serve deployment, resumably (serving/batch.py files).

samples.jsonl     N answers per prompt (key `<instruction id>#<k>`)
judgments.jsonl   K rubric judgments per answer (key `<answer key>#j<j>`); no `Score: N` → asked again
human.jsonl       the same rubric on held-out human-labelled pairs (key `h<pair id>#<1|2>#j<j>`)
"""
from __future__ import annotations

import asyncio
from typing import Optional

from arena_ray.judging.parse import parse_rubric, rubric_span, weighted_score
from arena_ray.judging.prompts import RubricTemplate
from arena_ray.records import ChatMessage, GenerationRequest, Instruction, SamplingSpec, TokenLogprob
from arena_ray.selfreward.agreement import HumanPair
from arena_ray.selfreward.pairs import ScoredSample
from arena_ray.selfreward.settings import SelfRewardConfig
from arena_ray.serving.batch import BatchItem, run_batch


def no_score(completion) -> str:
    return "" if parse_rubric(completion.text) is not None else "no 'Score: <0-5>' in the judgment"


def rubric_value(row: Optional[dict], weighted: bool) -> Optional[float]:
    """The score of an accepted judgment row: logprob-weighted when asked for and available, else as written."""
    if row is None:
        return None
    raw = row["text"]
    score = parse_rubric(raw)
    if weighted and score is not None and row.get("logprobs"):
        lps = [TokenLogprob(t, tuple((a, lp) for a, lp in top)) for t, top in row["logprobs"]]
        value = weighted_score(lps, rubric_span(raw), raw, low=0.0, high=5.0)
        if value is not None:
            return value
    return score


class SelfJudge:
    def __init__(self, client, sr: SelfRewardConfig, template: RubricTemplate, show: bool):
        self.client, self.sr, self.template, self.show = client, sr, template, show

    def _judge_sampling(self, j: int) -> SamplingSpec:
        sr = self.sr
        return SamplingSpec(max_tokens=sr.judge_max_tokens, temperature=sr.judge_temperature, seed=j,
                            top_logprobs=5 if sr.logprob_weighted else None,
                            regex=self.template.output_regex if sr.constrain_format else None)

    def _run(self, items, out, desc, max_attempts, accept=lambda c: "") -> dict[str, dict]:
        sr = self.sr
        return asyncio.run(run_batch(self.client, items, out, max_in_flight=sr.max_in_flight,
                                     timeout_s=sr.request_timeout_s, max_attempts=max_attempts, accept=accept,
                                     desc=desc, show=self.show))

    def sample(self, prompts: list[Instruction], out, iteration: int, max_tokens: int) -> dict[str, dict]:
        sr = self.sr
        items = [BatchItem(f"{p.instruction_id}#{k}", GenerationRequest(
            f"sample-{iteration}-{p.instruction_id}-{k}", (ChatMessage("user", p.text),),
            SamplingSpec(max_tokens=max_tokens, temperature=sr.temperature, top_p=sr.top_p,
                         seed=1000 * iteration + k)))
            for p in prompts for k in range(sr.samples_per_prompt)]
        return self._run(items, out, "answers", max_attempts=3)

    def judge(self, items: list[tuple[str, str, str]], out, desc: str) -> dict[str, Optional[float]]:
        """items: (key, instruction, response); K judgments each. Returns key#j<j> → score (None: unparsed)."""
        sr = self.sr
        batch = [BatchItem(f"{key}#j{j}", GenerationRequest(f"judge-{key}-{j}", self.template.messages(ins, resp),
                                                            self._judge_sampling(j)))
                 for key, ins, resp in items for j in range(sr.judgments_per_sample)]
        rows = self._run(batch, out, desc, sr.judge_max_attempts, accept=no_score)
        return {b.key: rubric_value(rows.get(b.key), sr.logprob_weighted) for b in batch}

    def scored_samples(self, prompts: list[Instruction], samples: dict[str, dict],
                       scores: dict[str, Optional[float]]) -> list[ScoredSample]:
        out = []
        for p in prompts:
            for k in range(self.sr.samples_per_prompt):
                key = f"{p.instruction_id}#{k}"
                row = samples.get(key)
                if row is None:  # generation failed after its attempts: no sample, the prompt has fewer
                    continue
                out.append(ScoredSample(p.instruction_id, p.text, k, row["text"],
                                        tuple(scores.get(f"{key}#j{j}") for j in range(self.sr.judgments_per_sample))))
        return out

    def human_scores(self, pairs: list[HumanPair], out) -> dict[tuple[str, int], Optional[float]]:
        items = [(f"h{p.pair_id}#{r}", p.instruction, p.response_1 if r == 1 else p.response_2)
                 for p in pairs for r in (1, 2)]
        scores = self.judge(items, out, "judge vs humans")
        result = {}
        for p in pairs:
            for r in (1, 2):
                values = [scores[f"h{p.pair_id}#{r}#j{j}"] for j in range(self.sr.judgments_per_sample)]
                parsed = [v for v in values if v is not None]
                result[(p.pair_id, r)] = sum(parsed) / len(parsed) if parsed else None
        return result
