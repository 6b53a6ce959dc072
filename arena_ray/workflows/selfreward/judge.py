"""The model answers and judges itself, on one Serve deployment, resumably (serving/batch.py files).

samples.jsonl     N answers per prompt (key `<instruction id>#<k>`)
judgments.jsonl   K rubric judgments per answer (key `<answer key>#j<j>`); no `Score: N` → asked again
human.jsonl       the same rubric on held-out human-labelled pairs (key `h<pair id>#<1|2>#j<j>`)
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Iterator, Optional

from arena_ray.judging.prompts import RubricTemplate
from arena_ray.judging.verdict import missing_rubric_score, rubric_score
from arena_ray.records import BatchRow, ChatMessage, GenerationRequest, HumanPair, Instruction, SamplingSpec
from arena_ray.serving.batch import BatchItem, run_batch
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.deployments import served
from arena_ray.settings import Config
from arena_ray.settings.models import ModelConfig
from arena_ray.settings.selfreward import SelfRewardConfig
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.selfreward.pairs import ScoredSample


def model_entry(config: Config, registry: Registry, name: str) -> dict:
    """The model entry serving a version: the model's own entry, its path swapped, overrides merged."""
    sr = config.self_reward
    base = config.models[sr.model].model_dump(mode="json")
    if name == version(sr.model, 0):
        return base
    return {**base, **sr.version_overrides, "path": registry.get(name).path}


@contextlib.contextmanager
def self_judge_served(config: Config, registry: Registry, name: str, template: RubricTemplate,
                      show: bool) -> Iterator[tuple["SelfJudge", ModelConfig]]:
    """Version `name` served (or reused) for a stage, as a SelfJudge that answers and judges with it."""
    cfg = ModelConfig.model_validate(model_entry(config, registry, name))
    with served({name: cfg}, config.serve, between_stages=True) as handles:
        client = ServeModelClient(handles[name], config.self_reward.max_in_flight)
        yield SelfJudge(client, config.self_reward, template, show), cfg


class SelfJudge:
    def __init__(self, client, sr: SelfRewardConfig, template: RubricTemplate, show: bool):
        self.client, self.sr, self.template, self.show = client, sr, template, show

    def _judge_sampling(self, j: int) -> SamplingSpec:
        sr = self.sr
        return SamplingSpec(max_tokens=sr.judge_max_tokens, temperature=sr.judge_temperature, seed=j,
                            top_logprobs=5 if sr.logprob_weighted else None,
                            regex=self.template.output_regex if sr.constrain_format else None)

    def _run(self, items, out, desc, max_attempts, accept=lambda c: "") -> dict[str, BatchRow]:
        sr = self.sr
        return asyncio.run(run_batch(self.client, items, out, max_in_flight=sr.max_in_flight,
                                     timeout_s=sr.request_timeout_s, max_attempts=max_attempts, accept=accept,
                                     desc=desc, show=self.show))

    def sample(self, prompts: list[Instruction], out, iteration: int, max_tokens: int) -> dict[str, BatchRow]:
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
        rows = self._run(batch, out, desc, sr.judge_max_attempts, accept=missing_rubric_score)
        return {b.key: rubric_score(rows[b.key].text, rows[b.key].logprobs, sr.logprob_weighted)
                if b.key in rows else None for b in batch}

    def scored_samples(self, prompts: list[Instruction], samples: dict[str, BatchRow],
                       scores: dict[str, Optional[float]]) -> list[ScoredSample]:
        out = []
        for p in prompts:
            for k in range(self.sr.samples_per_prompt):
                key = f"{p.instruction_id}#{k}"
                row = samples.get(key)
                if row is None:  # generation failed after its attempts: no sample, the prompt has fewer
                    continue
                out.append(ScoredSample(p.instruction_id, p.text, k, row.text,
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
