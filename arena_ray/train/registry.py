"""Checkpoint registry: every trained model is an HF folder (safetensors only) registered under a name and a
version, with its parent, the stage that made it and its training metrics. Pure (json, hashlib).

registry.jsonl is append-only; registering the same name again with the same weights is a no-op (resume),
with other weights an error. Loading anything that would unpickle (.bin, .pt, .pth) is refused.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from arena_ray.errors import TrainingError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def version(model: str, iteration: int) -> str:
    """The name of a model's version after `iteration` iterations (0: the base model)."""
    return f"{model}@{iteration}"


@dataclass(frozen=True)
class ModelVersion:
    name: str                  # e.g. "smollm2@1"
    version: int               # 0 for the base model, then 1, 2, … in registration order
    path: str
    parent: Optional[str]
    stage: str                 # base | sft | dpo | rm
    iteration: int
    digest: str                # sha256 over the safetensors files
    created: float = 0.0
    metrics: dict = field(default_factory=dict)


def weight_files(path: Path) -> list[Path]:
    """The safetensors files a checkpoint needs (all shards of an index); raises TrainingError."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise TrainingError(f"checkpoint {path}: no config.json (not a Hugging Face model folder)")
    unsafe = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if unsafe:
        raise TrainingError(f"checkpoint {path}: pickle-based weight files {unsafe} are not loaded; "
                              f"re-save with safetensors")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise TrainingError(f"checkpoint {path}: shard(s) {missing} listed in {index.name} are missing")
        return [path / s for s in shards]
    single = path / "model.safetensors"
    if not single.is_file():
        raise TrainingError(f"checkpoint {path}: no model.safetensors (nor an index of shards)")
    return [single]


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in weight_files(path):
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


class Registry:
    def __init__(self, root: Path):
        self.path = Path(root) / "registry.jsonl"

    def versions(self) -> list[ModelVersion]:
        if not self.path.exists():
            return []
        out = []
        text = self.path.read_text()
        lines = text.splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(ModelVersion(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as err:
                if lineno == len(lines) and not text.endswith("\n"):
                    break  # a half-written last line from a crash: that registration did not happen
                raise TrainingError(f"{self.path}:{lineno}: bad registry record ({err})") from None
        return out

    def _drop_partial_line(self) -> None:
        """A crash mid-append leaves a last line without its newline; it never counted, so drop it."""
        if self.path.exists():
            text = self.path.read_text()
            if text and not text.endswith("\n"):
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(text[:text.rfind("\n") + 1])
                tmp.replace(self.path)

    def get(self, name: str) -> Optional[ModelVersion]:
        return next((v for v in self.versions() if v.name == name), None)

    def register(self, name: str, path: Path, *, parent: Optional[str], stage: str, iteration: int,
                 metrics: Optional[dict] = None) -> ModelVersion:
        d = digest(Path(path))
        known = self.get(name)
        if known is not None:
            if known.digest != d:
                raise TrainingError(f"registry {self.path}: '{name}' is registered with other weights "
                                      f"({known.digest} != {d})")
            return known
        entry = ModelVersion(name, len(self.versions()), str(path), parent, stage, iteration, d, time.time(),
                             metrics or {})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_line()
        with self.path.open("a") as fh:
            fh.write(json.dumps(asdict(entry)) + "\n")
        return entry
