"""Instruction files and the instruction pipeline (`arena-ray data prepare`, the flywheel's data step)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.cluster import RayConfig

InstructionFormat = Literal["auto", "arena_ray", "arena_hard", "fastchat", "alpaca", "sharegpt", "messages",
                            "self_instruct", "jsonl"]


class InstructionsConfig(Strict):
    path: str = "../shared/data/instructions/arena_hard_v0.1.jsonl"
    """Instruction file (JSONL, JSON array or Parquet)."""
    format: InstructionFormat = "auto"
    """Record format; auto: detected per record."""
    offset: int = Field(0, ge=0)
    """Records skipped at the start of the file."""
    limit: Optional[int] = Field(None, ge=1)
    """Records used after the offset; null: all."""


class SourceConfig(Strict):
    path: str
    """Instruction file of this source."""
    format: InstructionFormat = "auto"
    """Record format; auto: detected per record."""
    id_prefix: str = ""
    """Prepended to the source's own ids: sources whose ids collide (MT-bench and Vicuna both count 1, 2, ...)
    need one. Empty keeps ids as the source wrote them (so replay answers keyed by them still match)."""
    limit: Optional[int] = Field(None, ge=1)
    """Records read from this source; null: all."""


class CleanConfig(Strict):
    min_chars: int = Field(16, ge=0)
    """Shorter instructions are dropped."""
    max_chars: int = Field(8000, ge=1)
    """Longer instructions are dropped."""
    languages: tuple[str, ...] = ("en",)
    """Languages kept (ISO 639-1); empty: keep every language."""
    language_min_confidence: float = Field(0.8, ge=0, le=1)
    """Drop a record only when the identifier is at least this sure it is another language."""
    exact_dedup: bool = True
    """Drop exact duplicates (after whitespace and case normalisation)."""
    near_dedup: bool = True
    """Drop near duplicates (MinHash LSH)."""
    near_dup_threshold: float = Field(0.8, ge=0.05, le=0.95)
    """Estimated Jaccard similarity of word shingles at which a record is a near duplicate."""
    num_perm: int = Field(128, ge=16)
    """MinHash permutations."""
    shingle: int = Field(5, ge=1)
    """Words per MinHash shingle."""
    decontaminate_against: tuple[str, ...] = ()
    """Test/benchmark instruction files no training instruction may overlap (any supported format)."""
    contamination_ngram: int = Field(8, ge=1)
    """Word n-gram length of the contamination check."""

    @model_validator(mode="after")
    def _length_window(self) -> "CleanConfig":
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars}): "
                             "nothing would be kept")
        return self
    contamination_threshold: float = Field(0.5, gt=0, le=1)
    """Share of a record's n-grams found in a protected file that makes it contaminated."""


class SplitConfig(Strict):
    shards: int = Field(4, ge=1)
    """Training shards D0..DN-1."""
    holdout: int = Field(0, ge=0)
    """Instructions held out of every shard (an evaluation set no training shard overlaps); 0: none."""
    seed: int = 0
    """Seed of the permutation that deals instructions into holdout and shards."""


class DataSpec(Strict):
    """What to read and how to clean and split it (the flywheel embeds this; `data prepare` adds where)."""

    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    """Instruction files, read in order."""
    clean: CleanConfig = Field(default_factory=CleanConfig)
    """Cleaning steps and thresholds."""
    split: SplitConfig = Field(default_factory=SplitConfig)
    """Holdout and shards."""
    annotate_batch_size: int = Field(256, ge=1)
    """Records per Ray Data batch of the annotation map."""


class DataJob(DataSpec):
    """`arena-ray data prepare`."""

    out_dir: str = "runs/data"
    """Output directory (tables, shards, report)."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """Cluster to run on."""
