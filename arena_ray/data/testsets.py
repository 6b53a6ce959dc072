"""WizardArena offline test sets and decontamination — the pure part (numpy, scikit-learn; no torch).

Offline-Diverse: k-means over instruction embeddings, m instructions per cluster (those nearest the centroid).
Offline-Hard: the judge's 0-10 difficulty per instruction, top n. Offline-Mix: both, deduplicated.
Decontamination: a training instruction is dropped when its word n-grams overlap a test/benchmark
instruction by at least a threshold, or when its embedding's cosine similarity to the nearest one does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from arena_ray.records import Instruction

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Selected:
    instruction: Instruction
    cluster: Optional[int] = None
    difficulty: Optional[float] = None


def select_diverse(instructions: Sequence[Instruction], embeddings: np.ndarray, clusters: int, per_cluster: int,
                   seed: int = 0) -> list[Selected]:
    from sklearn.cluster import KMeans

    if len(instructions) != len(embeddings):
        raise ValueError("one embedding per instruction")
    k = min(clusters, len(instructions))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(embeddings)
    distance = np.linalg.norm(embeddings - km.cluster_centers_[km.labels_], axis=1)
    out = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        for i in members[np.argsort(distance[members], kind="stable")][:per_cluster]:
            out.append(Selected(instructions[i], cluster=c))
    return out


def select_hard(instructions: Sequence[Instruction], difficulty: dict[str, float], top: int) -> list[Selected]:
    """Top-n by judged difficulty; instructions without a parsed score are left out (and counted upstream)."""
    rated = [i for i in instructions if i.instruction_id in difficulty]
    rated.sort(key=lambda i: (-difficulty[i.instruction_id], i.instruction_id))
    return [Selected(i, difficulty=difficulty[i.instruction_id]) for i in rated[:top]]


def mix(*sets: Sequence[Selected]) -> list[Selected]:
    seen, out = set(), []
    for s in sets:
        for item in s:
            if item.instruction.instruction_id not in seen:
                seen.add(item.instruction.instruction_id)
                out.append(item)
    return out


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Contamination:
    instruction_id: str
    reason: str           # "ngram" or "embedding"
    matched_id: str
    score: float


def find_contamination(train: Sequence[Instruction], test: Sequence[Instruction], *, n: int = 8,
                       ngram_threshold: float = 0.5, train_embeddings: Optional[np.ndarray] = None,
                       test_embeddings: Optional[np.ndarray] = None,
                       cosine_threshold: float = 0.9) -> list[Contamination]:
    """One finding per contaminated training instruction (n-gram evidence first)."""
    index: dict[tuple[str, ...], str] = {}
    for t in test:
        for g in ngrams(t.text, n):
            index.setdefault(g, t.instruction_id)
    found: dict[str, Contamination] = {}
    for tr in train:
        grams = ngrams(tr.text, n)
        hits: dict[str, int] = {}
        for g in grams:
            if g in index:
                hits[index[g]] = hits.get(index[g], 0) + 1
        if hits:
            best, count = max(hits.items(), key=lambda kv: kv[1])
            if count / len(grams) >= ngram_threshold:
                found[tr.instruction_id] = Contamination(tr.instruction_id, "ngram", best, count / len(grams))
    if train_embeddings is not None and test_embeddings is not None and len(test):
        sims = _normalised(train_embeddings) @ _normalised(test_embeddings).T
        nearest = sims.argmax(axis=1)
        for i, tr in enumerate(train):
            score = float(sims[i, nearest[i]])
            if tr.instruction_id not in found and score >= cosine_threshold:
                found[tr.instruction_id] = Contamination(tr.instruction_id, "embedding",
                                                         test[nearest[i]].instruction_id, score)
    return [found[t.instruction_id] for t in train if t.instruction_id in found]


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def parse_difficulty(raw: str) -> Optional[float]:
    """The first integer 0-10 in the judge's answer, or None."""
    span = difficulty_span(raw)
    return float(raw[span[0]:span[1]]) if span else None


def difficulty_span(raw: str) -> Optional[tuple[int, int]]:
    match = re.search(r"\b(10|[0-9])\b", raw or "")
    return match.span(1) if match else None
