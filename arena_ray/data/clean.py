"""Instruction cleaning, the pure part: per-record annotations (length, language, exact and MinHash keys) and
the decisions over a whole table (which records each step removes, and why). No ray, vllm or torch.

The Ray Data shell (pipeline.py) computes the annotations in parallel; the decisions run here, in a fixed
order — length, language, exact duplicates, near duplicates, contamination — so each removed record is
charged to the first step that removed it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np

from arena_ray.data.testsets import find_contamination
from arena_ray.errors import InputError
from arena_ray.records import Instruction

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Annotation:
    instruction_id: str
    chars: int
    language: str
    language_confidence: float
    exact_key: str
    minhash: np.ndarray  # uint32[num_perm], datasketch's "affine32" scheme


@dataclass(frozen=True)
class Removal:
    instruction_id: str
    step: str     # length | language | exact_dup | near_dup | contamination
    detail: str   # e.g. "12 chars < 16", "de (0.98)", "duplicate of <id>"


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.strip().lower())


def exact_key(text: str) -> str:
    return hashlib.sha1(normalise(text).encode()).hexdigest()


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) by py3langid's packaged model."""
    lang, prob = _identifier().classify(text)
    return lang, float(prob)


def shingles(text: str, ngram: int) -> set[bytes]:
    words = _WORD.findall(normalise(text))
    if len(words) <= ngram:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + ngram]).encode() for i in range(len(words) - ngram + 1)}


SCHEME = "affine32"  # pinned: signatures cached on disk must be comparable across datasketch releases


def minhash(text: str, num_perm: int, ngram: int, seed: int = 1) -> np.ndarray:
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME)
    m.update_batch(list(shingles(text, ngram)))
    return np.asarray(m.hashvalues, dtype=np.uint32)


def annotate(inst: Instruction, num_perm: int, ngram: int, seed: int = 1) -> Annotation:
    lang, prob = language(inst.text)
    return Annotation(inst.instruction_id, len(inst.text), lang, prob, exact_key(inst.text),
                      minhash(inst.text, num_perm, ngram, seed))


def length_removals(annotations: Iterable[Annotation], min_chars: int, max_chars: int) -> list[Removal]:
    out = []
    for a in annotations:
        if a.chars < min_chars:
            out.append(Removal(a.instruction_id, "length", f"{a.chars} chars < {min_chars}"))
        elif a.chars > max_chars:
            out.append(Removal(a.instruction_id, "length", f"{a.chars} chars > {max_chars}"))
    return out


def language_removals(annotations: Iterable[Annotation], keep: Sequence[str], min_confidence: float) -> list[Removal]:
    """Drop a record only when the identifier is confident it is another language: code, maths and very short
    texts get low-confidence guesses and are kept."""
    if not keep:
        return []
    return [Removal(a.instruction_id, "language", f"{a.language} ({a.language_confidence:.2f})")
            for a in annotations
            if a.language not in keep and a.language_confidence >= min_confidence]


def exact_duplicate_removals(annotations: Iterable[Annotation]) -> list[Removal]:
    first: dict[str, str] = {}
    out = []
    for a in annotations:
        if a.exact_key in first:
            out.append(Removal(a.instruction_id, "exact_dup", f"duplicate of {first[a.exact_key]}"))
        else:
            first[a.exact_key] = a.instruction_id
    return out


def near_duplicate_removals(annotations: Sequence[Annotation], threshold: float, num_perm: int,
                            seed: int = 1) -> list[Removal]:
    """MinHash LSH (datasketch): in table order, a record whose estimated Jaccard similarity to an earlier
    kept record is >= threshold is removed; the first of a cluster is kept."""
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[str, LeanMinHash] = {}
    out = []
    for a in annotations:
        sketch = LeanMinHash(MinHash(num_perm=num_perm, seed=seed, hashvalues=a.minhash, scheme=SCHEME))
        similar = [(sketch.jaccard(kept[k]), k) for k in lsh.query(sketch)]
        similar = [(j, k) for j, k in similar if j >= threshold]
        if similar:
            j, k = max(similar)
            out.append(Removal(a.instruction_id, "near_dup", f"~{j:.2f} Jaccard with {k}"))
            continue
        lsh.insert(a.instruction_id, sketch)
        kept[a.instruction_id] = sketch
    return out


def contamination_removals(train: Sequence[Instruction], protected: Sequence[Instruction], ngram: int,
                           threshold: float) -> list[Removal]:
    found = find_contamination(train, protected, n=ngram, ngram_threshold=threshold)
    return [Removal(c.instruction_id, "contamination", f"{c.score:.2f} of {ngram}-grams in {c.matched_id}")
            for c in found]


def split(ids: Sequence[str], shards: int, holdout: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """A seeded permutation: the first `holdout` ids are the held-out set, the rest are dealt into `shards`
    contiguous shards D0..DN-1 of near-equal size (order inside each follows the permutation)."""
    if holdout + shards > len(ids):
        raise InputError(f"only {len(ids)} instructions are left after cleaning: they cannot fill "
                         f"split.holdout={holdout} and split.shards={shards} non-empty shards (lower them, or "
                         f"relax the cleaning thresholds)")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    rest = order[holdout:]
    bounds = np.linspace(0, len(rest), shards + 1).round().astype(int)
    return order[:holdout], [rest[bounds[k]:bounds[k + 1]] for k in range(shards)]


def apply_removals(items: Sequence, removals: Iterable[Removal], key=lambda x: x.instruction_id) -> list:
    gone = {r.instruction_id for r in removals}
    return [x for x in items if key(x) not in gone]



def summary(total: int, removals: Sequence[Removal], kept: int, examples: int = 3,
            texts: Optional[dict[str, str]] = None) -> dict:
    steps: dict[str, dict] = {}
    for r in removals:
        s = steps.setdefault(r.step, {"removed": 0, "examples": []})
        s["removed"] += 1
        if len(s["examples"]) < examples:
            s["examples"].append({"instruction_id": r.instruction_id, "detail": r.detail,
                                  **({"text": texts[r.instruction_id][:160]} if texts else {})})
    return {"ingested": total, "kept": kept, "steps": steps}
