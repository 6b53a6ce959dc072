"""`arena-ray testset`: WizardArena Offline-Diverse / Offline-Hard / Offline-Mix and decontamination."""
from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.cluster import RayConfig, ServeConfig
from arena_ray.settings.models import ModelConfig


class DiverseConfig(Strict):
    clusters: int = Field(20, ge=1)
    """k-means clusters of the instruction embeddings (the paper: 500)."""
    per_cluster: int = Field(2, ge=1)
    """Instructions nearest each centroid kept (the paper: 2)."""
    seed: int = 0
    """k-means seed."""


class HardConfig(Strict):
    enabled: bool = True
    """Build Offline-Hard (needs a judge)."""
    top: int = Field(10, ge=1)
    """Hardest instructions kept."""
    candidates: Optional[int] = Field(None, ge=1)
    """Rate only a seeded sample of this many instructions (the paper: top 1,000 of 10,000); null: all."""
    prompt: str = "difficulty-v1"
    """Difficulty template (shipped name or YAML path)."""
    max_tokens: int = Field(4, ge=1)
    """New tokens per rating."""
    max_attempts: int = Field(2, ge=1)
    """Ratings asked per instruction before it stays unrated."""
    max_in_flight: int = Field(16, ge=1)
    """Requests in flight to the judge."""
    seed: int = 0
    """Seed of the candidate sample."""


class DecontaminateConfig(Strict):
    train: tuple[str, ...] = ()
    """Training instruction files to clean."""
    against: tuple[str, ...] = ()
    """Benchmark files to protect, besides the test sets built here."""
    ngram: int = Field(8, ge=1)
    """Word n-gram length."""
    ngram_threshold: float = Field(0.5, gt=0, le=1)
    """Share of a record's n-grams in a protected instruction that makes it contaminated."""
    cosine_threshold: float = Field(0.9, gt=0, le=1)
    """Embedding cosine similarity that makes a record contaminated."""


class TestsetJob(Strict):
    """`arena-ray testset`."""

    __test__ = False  # a settings class, not a pytest test class

    out_dir: str = "runs/testset"
    """Output directory (sets, difficulty ratings, report)."""
    sources: tuple[str, ...] = Field(min_length=1)
    """Instruction files to choose from."""
    limit_per_source: Optional[int] = Field(None, ge=1)
    """Records read per source; null: all."""
    embedding_model: Optional[str] = None
    """Sentence-transformers folder; null: the all-MiniLM-L6-v2 packaged on PyPI."""
    diverse: DiverseConfig = Field(default_factory=DiverseConfig)
    """Offline-Diverse."""
    hard: HardConfig = Field(default_factory=HardConfig)
    """Offline-Hard."""
    judge: Optional[ModelConfig] = None
    """The model that rates difficulty (hard.enabled)."""
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    """Decontamination of training files against the sets."""
    request_timeout_s: float = Field(300.0, gt=0)
    """A rating request without an answer after this long is a failed attempt."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """Cluster to run on."""
    serve: ServeConfig = Field(default_factory=ServeConfig)
    """Serve settings of the judge."""

    @model_validator(mode="after")
    def _judge_for_hard(self) -> "TestsetJob":
        if self.hard.enabled and self.judge is None:
            raise ValueError("hard.enabled needs a 'judge' model")
        if self.judge is not None and self.judge.engine == "replay":
            raise ValueError("judge: a replay model cannot rate difficulty")
        return self
