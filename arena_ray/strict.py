"""The base of every config section (unknown keys are errors, values are frozen after validation), and the
sections every job shares. No imports from the rest of the package, so any settings module can use it."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


InstructionFormat = Literal["auto", "arena_ray", "arena_hard", "fastchat", "alpaca", "sharegpt", "self_instruct",
                            "jsonl"]


class RayConfig(Strict):
    # None: use $RAY_ADDRESS if set, else start a local cluster owned by this process.
    address: Optional[str] = None
    # Logical CPUs of a local cluster. More than the cores: serving replicas mostly wait on their engine.
    num_cpus: int = Field(8, ge=1)
    namespace: str = "arena_ray"
    dashboard_host: str = "127.0.0.1"
    include_dashboard: bool = True


class InstructionsConfig(Strict):
    path: str = "../shared/data/instructions/arena_hard_v0.1.jsonl"
    format: InstructionFormat = "auto"
    offset: int = Field(0, ge=0)
    limit: Optional[int] = Field(None, ge=1)
