"""The flywheel's schedule, pure: which version battles on which shard, and what each stage produces.

Iteration i turns version `<target>@{i-1}` into `<target>@{i}`. Each policy stage (sft, dpo, ppo) battles its
input version on a shard, curates (ppo: takes the shard as prompts), and trains the next policy; with fresh_shard_per_stage each policy stage
takes the next unused shard (the paper: SFT on D_i, then DPO with the SFT model on D_i+1). An rm stage trains
a reward model `<target>-rm@{i}` on the battles of the iteration's first stage and leaves the policy alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from arena_ray.train.registry import version


@dataclass(frozen=True)
class Stage:
    iteration: int
    method: str          # sft | dpo | rm | ppo
    shard: int           # index of the shard D_k its battles ran on
    battle_model: str    # the version that battled (and, for sft/dpo, the base that is trained)
    output: str          # the version this stage produces
    battle_key: str      # stages with the same key share one arena run

    @property
    def name(self) -> str:
        return f"iter{self.iteration}-{self.method}"


def battle_key(shard: int, model: str) -> str:
    return f"D{shard}-{model}"


def plan(target: str, iterations: int, stages: Sequence[str], fresh_shard_per_stage: bool) -> list[Stage]:
    out: list[Stage] = []
    shard = 0
    policy = [s for s in stages if s != "rm"]
    for i in range(1, iterations + 1):
        current = version(target, i - 1)
        first_battle: tuple[int, str] | None = None
        for method in stages:
            if method == "rm":
                s, model = first_battle or (shard, current)
                out.append(Stage(i, "rm", s, model, f"{target}-rm@{i}", battle_key(s, model)))
                continue
            output = version(target, i) if method == policy[-1] else f"{target}@{i}-{method}"
            out.append(Stage(i, method, shard, current, output, battle_key(shard, current)))
            first_battle = first_battle or (shard, current)
            current = output
            if fresh_shard_per_stage:
                shard += 1
        if not fresh_shard_per_stage:
            shard += 1
    return out


def shards_needed(stages: Sequence[Stage]) -> int:
    return 1 + max(s.shard for s in stages)
