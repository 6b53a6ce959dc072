"""The root of a workflow config: models and the sections each workflow reads. A section a workflow does not
use is simply left out (an arena-only config has no `flywheel:`; a PPO config needs no `arena:`)."""
from __future__ import annotations

import hashlib
import json
from typing import Optional

from pydantic import Field, model_validator

from arena_ray.settings.arena import ArenaConfig, JudgeConfig, RatingConfig
from arena_ray.settings.base import Strict
from arena_ray.settings.cluster import RayConfig, ServeConfig
from arena_ray.settings.data import InstructionsConfig
from arena_ray.settings.flywheel import FlywheelConfig
from arena_ray.settings.models import ModelConfig
from arena_ray.settings.names import name_problem
from arena_ray.settings.ppo import PPOConfig
from arena_ray.settings.selfreward import SelfRewardConfig


class Config(Strict):
    run_dir: str = "runs/local"
    """Run directory of `arena-ray arena` (ledger, battles, leaderboard)."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """Cluster to start or attach to."""
    serve: ServeConfig = Field(default_factory=ServeConfig)
    """Ray Serve settings."""
    instructions: InstructionsConfig = Field(default_factory=InstructionsConfig)
    """The prompts of `arena-ray arena`."""
    models: dict[str, ModelConfig]
    """Every model by name: competitors, judges, policies."""
    arena: Optional[ArenaConfig] = None
    """Who battles in `arena-ray arena` and how requests are scheduled (the flywheel and self-reward use its
    scheduling settings for their own arenas, or the defaults when it is left out)."""
    judge: Optional[JudgeConfig] = None
    """The pairwise judge of every arena (needed by arena, flywheel, self-reward, and ppo with a judge reward)."""
    rating: RatingConfig = Field(default_factory=RatingConfig)
    """Bradley-Terry ratings."""
    flywheel: Optional[FlywheelConfig] = None
    """`arena-ray flywheel`."""
    self_reward: Optional[SelfRewardConfig] = None
    """`arena-ray self-reward`."""
    ppo: Optional[PPOConfig] = None
    """`arena-ray ppo`."""

    @model_validator(mode="after")
    def _model_names(self) -> "Config":
        for name in self.models:
            problem = name_problem(name, in_config=True)
            if problem:
                raise ValueError(f"models: the name {name!r} {problem}")
        return self

    @model_validator(mode="after")
    def _names_resolve(self) -> "Config":
        known = sorted(self.models)
        if self.arena is not None:
            for name in self.arena.competitors:
                if name not in self.models:
                    raise ValueError(f"arena.competitors: unknown model '{name}' (models: {known})")
            if self.judge is None:
                raise ValueError("an 'arena' section needs a 'judge' section")
        if self.judge is not None:
            if self.judge.model not in self.models:
                raise ValueError(f"judge.model: unknown model '{self.judge.model}' (models: {known})")
            for name in self.judge.panel:
                if name not in self.models:
                    raise ValueError(f"judge.panel: unknown model '{name}' (models: {known})")
            if self.judge.panel and self.judge.model not in self.judge.panel:
                raise ValueError(f"judge.panel: must include judge.model '{self.judge.model}' (its card heads the "
                                 f"board)")
            if len(set(self.judge.panel)) != len(self.judge.panel):
                raise ValueError(f"judge.panel: a model is named twice ({list(self.judge.panel)})")
            for name in self.judges():
                if self.models[name].engine == "replay":
                    raise ValueError(f"judge: '{name}' is a replay model and cannot judge")
        if self.flywheel is not None:
            fw = self.flywheel
            for name in (fw.target, *fw.competitors):
                if name not in self.models:
                    raise ValueError(f"flywheel: unknown model '{name}' (models: {known})")
            if self.models[fw.target].engine != "vllm":
                raise ValueError(f"flywheel.target: '{fw.target}' must be a vllm model (its weights are trained)")
        for section, name in (("self_reward.model", self.self_reward and self.self_reward.model),
                              ("ppo.policy", self.ppo and self.ppo.policy)):
            if name and self.models.get(name, None) is None:
                raise ValueError(f"{section}: unknown model '{name}' (models: {known})")
            if name and self.models[name].engine != "vllm":
                raise ValueError(f"{section}: '{name}' must be a vllm model (its weights are trained)")
        for section, needs in (("flywheel", self.flywheel), ("self_reward", self.self_reward),
                               (f"ppo.reward.source {self.ppo and self.ppo.reward.source}",
                                self.ppo and self.ppo.backend == "native" and self.ppo.reward.source != "rm")):
            if needs and self.judge is None:
                raise ValueError(f"{section} needs a 'judge' section")
        return self

    def judges(self) -> tuple[str, ...]:
        """The judge, or a panel's members."""
        return tuple(self.judge.panel) or (self.judge.model,)

    def served_models(self) -> tuple[str, ...]:
        """Models an arena serves: every competitor plus the judges (shared where a model is both)."""
        return tuple(dict.fromkeys((*self.arena.competitors, *self.judges())))

    def run_identity(self) -> dict:
        """What decides an arena's answers and verdicts, per model and for the judge, as plain values (a resumed
        run must match them, a mismatch is named field by field). Serving layout (replicas, resources, engine
        capacity) is left out, and so are fields at their defaults, so that a release adding an option with a
        behaviour-preserving default keeps old runs resumable."""
        return {"judge": self.judge_identity(),
                "models": {n: answer_settings(self.models[n]) for n in self.arena.competitors}}

    def judge_identity(self) -> dict:
        """What decides the judge's verdicts: its settings (not retries, caches or its card) and its engine's."""
        judge = self.judge.model_dump(mode="json", exclude=JUDGE_BOOKKEEPING, exclude_defaults=True)
        # The templates always: their defaults change between releases (pairwise-v1 → pairwise-v3-fenced).
        out = {**judge, "prompt": self.judge.prompt, "multi_turn_prompt": self.judge.multi_turn_prompt,
               "engine": answer_settings(self.models[self.judge.model])}
        if self.judge.panel:
            out["panel_engines"] = {m: answer_settings(self.models[m]) for m in self.judge.panel}
        return out


JUDGE_BOOKKEEPING = {"max_attempts", "cache_dir", "card", "card_data", "card_limit", "card_cache_dir"}
LAYOUT = {"replicas", "num_cpus", "num_gpus", "max_ongoing_requests", "env"}
VLLM_LAYOUT = {"enforce_eager", "gpu_memory_utilization", "tensor_parallel_size", "max_num_seqs"}
OPENAI_LAYOUT = {"api_key_env", "connect_timeout_s"}


def answer_settings(model: ModelConfig) -> dict:
    """The settings of a model that change what it answers: engine, weights or endpoint (openai.model,
    base_url), dtype, context, sampling, prompting — not where or how many times it runs."""
    out = model.model_dump(mode="json", exclude=LAYOUT | {"vllm", "openai"}, exclude_defaults=True)
    if model.engine == "vllm":
        vllm = model.vllm.model_dump(mode="json", exclude=VLLM_LAYOUT, exclude_defaults=True)
        out.update({"vllm": vllm} if vllm else {})
    if model.engine == "openai":
        out["openai"] = model.openai.model_dump(mode="json", exclude=OPENAI_LAYOUT)
    return out


def identity_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
