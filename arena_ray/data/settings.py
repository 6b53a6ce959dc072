"""`arena-ray data prepare` job config: sources, cleaning thresholds, the shard split."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from arena_ray.strict import InstructionFormat, RayConfig, Strict


class SourceConfig(Strict):
    path: str
    format: InstructionFormat = "auto"
    # Prepended to the source's own ids; sources whose ids collide (MT-bench and Vicuna both count 1, 2, …)
    # need one. Left empty, ids stay as the source wrote them (so replay answers keyed by them still match).
    id_prefix: str = ""
    limit: Optional[int] = Field(None, ge=1)


class CleanConfig(Strict):
    min_chars: int = Field(16, ge=0)
    max_chars: int = Field(8000, ge=1)
    languages: tuple[str, ...] = ("en",)     # empty: keep every language
    # Drop a record only when the identifier is at least this sure it is another language.
    language_min_confidence: float = Field(0.8, ge=0, le=1)
    exact_dedup: bool = True
    near_dedup: bool = True
    near_dup_threshold: float = Field(0.8, ge=0.05, le=0.95)  # estimated Jaccard of word shingles (LSH needs <1)
    num_perm: int = Field(128, ge=16)
    shingle: int = Field(5, ge=1)
    # Test/benchmark instruction files no training instruction may overlap (any supported format).
    decontaminate_against: tuple[str, ...] = ()
    contamination_ngram: int = Field(8, ge=1)
    contamination_threshold: float = Field(0.5, gt=0, le=1)


class SplitConfig(Strict):
    shards: int = Field(4, ge=1)
    # Held out of every shard (an evaluation set that no training shard overlaps); 0: none.
    holdout: int = Field(0, ge=0)
    seed: int = 0


class DataSpec(Strict):
    """What to read and how to clean and split it (the flywheel embeds this; `data prepare` adds where)."""

    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    annotate_batch_size: int = Field(256, ge=1)


class DataJob(DataSpec):
    out_dir: str = "runs/data"
    ray: RayConfig = Field(default_factory=RayConfig)
