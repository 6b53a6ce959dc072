"""The optional seed stage (Self-Rewarding LMs' M1): SFT of M0 on IFT + EFT data.

IFT: instructions with reference answers (a recorded answers file). EFT: M0's own rubric judgments of
human-ranked pairs, kept only where the judged order agrees with the human label (the paper keeps judgments
that agree with human rankings), so the model learns to judge the way people rank.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from arena_ray.data.answers import load_answers
from arena_ray.data.ingest import load_instructions
from arena_ray.data.preferences import load_pandalm
from arena_ray.errors import InputError
from arena_ray.records.tables import write_atomic
from arena_ray.serving.batch import read_rows
from arena_ray.settings import Config
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.kit import once, train_version
from arena_ray.workflows.selfreward.judge import self_judge_served

log = logging.getLogger(__name__)


def _messages(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def ift_rows(s) -> list[dict]:
    if not s.ift_instructions:
        return []
    if not s.ift_answers:
        raise InputError("self_reward.seed.ift_instructions needs ift_answers (reference answers)")
    answers = load_answers(s.ift_answers)
    rows = [{"messages": _messages(i.text, answers[i.instruction_id])}
            for i in load_instructions(s.ift_instructions, limit=s.ift_limit) if i.instruction_id in answers]
    if not rows:
        raise InputError(f"{s.ift_answers}: no answer for any instruction of {s.ift_instructions}")
    return rows


def eft_rows(config: Config, out: Path, registry: Registry, template, show: bool) -> list[dict]:
    s, sr = config.self_reward.seed, config.self_reward
    if not s.eft_path:
        return []
    pairs = [p for p in load_pandalm(s.eft_path, s.eft_offset, s.eft_limit) if p.label != 0]
    with self_judge_served(config, registry, version(sr.model, 0), template, show) as (judge, _):
        items = [(f"h{p.pair_id}#{r}", p.instruction, p.response_1 if r == 1 else p.response_2)
                 for p in pairs for r in (1, 2)]
        scores = judge.judge(items, out / "eft_judgments.jsonl", "EFT judgments")
    texts = {row.key: row.text for row in read_rows(out / "eft_judgments.jsonl") if row.ok}
    rows = []
    for p in pairs:
        for j in range(sr.judgments_per_sample):
            k1, k2 = f"h{p.pair_id}#1#j{j}", f"h{p.pair_id}#2#j{j}"
            s1, s2 = scores.get(k1), scores.get(k2)
            if s1 is None or s2 is None or (s1 > s2) != (p.label > 0) or s1 == s2:
                continue
            for key, response in ((k1, p.response_1), (k2, p.response_2)):
                prompt = template.messages(p.instruction, response)[-1].content
                rows.append({"messages": _messages(prompt, texts[key])})
    return rows


def run(config: Config, root: Path, registry: Registry, template, show: bool) -> str:
    sr = config.self_reward
    out = root / "seed"
    name = version(sr.model, 1)

    def build() -> dict:
        ift, eft = ift_rows(sr.seed), eft_rows(config, out, registry, template, show)
        if not ift and not eft:
            raise InputError("self_reward.seed: neither IFT nor EFT data (set ift_instructions or eft_path)")
        write_atomic(pa.Table.from_pylist(ift + eft), out / "data" / "sft.parquet")
        return {"ift": len(ift), "eft": len(eft)}
    counts = once(out / "data", build)
    log.info("seed: %d IFT + %d EFT examples", counts["ift"], counts["eft"])
    train_version(config, registry, method="sft", base=version(sr.model, 0), output=name,
                  data=out / "data" / "sft.parquet", stage_dir=out, settings=sr.seed.train, iteration=0,
                  model=sr.model, storage=root / "ray_train")
    return name
