"""Instruction cleaning, the pure part: per-record annotations (length, language, exact and MinHash keys) and
the decisions (which records each step removes, and why). No ray, vllm or torch.

The steps run in a fixed order — length, language, exact duplicates, near duplicates, contamination — so each
removed record is charged to the first step that removed it. The sequential definitions over a whole table
(`*_removals`) say what each step means; the Ray Data shell (workflows/prepare.py) reaches the same decisions
without holding the table anywhere: row-local steps per record, duplicates per group of rows that share an
exact key or an LSH band key (`exact_duplicates`, `near_duplicate_edges`, then `greedy_near_duplicates`
over the few records that have a near twin), and the split by a hash of each id (`split_key`).
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


@lru_cache(maxsize=4)
def _permutations(num_perm: int, seed: int) -> np.ndarray:
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations


def minhashes(texts: Sequence[str], num_perm: int, ngram: int, seed: int = 1) -> np.ndarray:
    """uint32[len(texts), num_perm]: `minhash` of each text, the same values computed together — datasketch's
    affine32 scheme (SHA-1 of each shingle, MurmurHash3's 32-bit finaliser, a·h + b mod 2^32, the minimum) with
    its permutations drawn once, not once per text (a sketch's construction was most of its cost)."""
    import struct

    a, b = _permutations(num_perm, seed)
    hashes, starts = [], []
    for text in texts:
        starts.append(len(hashes))
        hashes.extend(struct.unpack("<I", hashlib.sha1(s).digest()[:4])[0] for s in shingles(text, ngram))
    if not texts:
        return np.zeros((0, num_perm), dtype=np.uint32)
    h = np.array(hashes, dtype=np.uint32)
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * np.uint32(0x85EBCA6B)
        h = h ^ (h >> np.uint32(13))
        h = h * np.uint32(0xC2B2AE35)
        h = h ^ (h >> np.uint32(16))
        values = h[:, None] * a[None, :] + b[None, :]
    return np.minimum.reduceat(values, starts, axis=0).astype(np.uint32)


def annotate(inst: Instruction, num_perm: int, ngram: int, seed: int = 1) -> Annotation:
    lang, prob = language(inst.text)
    return Annotation(inst.instruction_id, len(inst.text), lang, prob, exact_key(inst.text),
                      minhash(inst.text, num_perm, ngram, seed))


def length_detail(chars: int, min_chars: int, max_chars: int) -> Optional[str]:
    """Why a record of this length is removed, or None."""
    if chars < min_chars:
        return f"{chars} chars < {min_chars}"
    if chars > max_chars:
        return f"{chars} chars > {max_chars}"
    return None


def language_detail(lang: str, confidence: float, keep: Sequence[str], min_confidence: float) -> Optional[str]:
    """Why a record is removed for its language, or None. Only when the identifier is confident it is another
    language: code, maths and very short texts get low-confidence guesses and are kept."""
    if keep and lang not in keep and confidence >= min_confidence:
        return f"{lang} ({confidence:.2f})"
    return None


def length_removals(annotations: Iterable[Annotation], min_chars: int, max_chars: int) -> list[Removal]:
    return [Removal(a.instruction_id, "length", d) for a in annotations
            if (d := length_detail(a.chars, min_chars, max_chars)) is not None]


def language_removals(annotations: Iterable[Annotation], keep: Sequence[str], min_confidence: float) -> list[Removal]:
    return [Removal(a.instruction_id, "language", d) for a in annotations
            if (d := language_detail(a.language, a.language_confidence, keep, min_confidence)) is not None]


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
    kept record is >= threshold is removed; the first of a cluster is kept. The sequential definition: the
    pipeline decides the same by bands (near_duplicate_edges, greedy_near_duplicates; tests compare them)."""
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


# --- the same decisions in groups: what the Ray Data shell runs per partition of rows (numpy, no table held)

def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for this threshold (equal weights of false
    positives and negatives), so grouping by band key finds exactly the candidates its index would."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


_GOLDEN, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64[n, bands]: one key per LSH band, the band's index and its `rows` hash values mixed into 64 bits.
    Records share a key where datasketch would put them in the same bucket; a 64-bit collision only adds a
    candidate that the Jaccard check then rejects."""
    sig = np.asarray(signatures, dtype=np.uint32).astype(np.uint64)
    keys = np.empty((len(sig), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            h = np.full(len(sig), _GOLDEN * np.uint64(b + 1), dtype=np.uint64)
            for col in range(b * rows, (b + 1) * rows):
                h = _mix64(h ^ sig[:, col])
            keys[:, b] = h
    return keys


def exact_duplicates(orders: Sequence[int], ids: Sequence[str], keys: Sequence[str]) -> list[tuple[int, str]]:
    """(order, detail) of every row that is not the first (lowest order) of the rows with its exact key, among
    rows that hold whole key groups — exact_duplicate_removals, group by group."""
    rows = sorted(zip(keys, orders, ids))
    out, first = [], None
    for k, (key, order, _) in enumerate(rows):
        if k and key == rows[k - 1][0]:
            out.append((order, f"duplicate of {first}"))
        else:
            first = rows[k][2]
    return out


def near_duplicate_edges(band: np.ndarray, orders: np.ndarray, ids: Sequence[str], exact: Sequence[str],
                         signatures: np.ndarray, threshold: float, drop_exact: bool) -> list[tuple]:
    """(earlier order, its id, later order, its id, Jaccard) for every pair of rows sharing a band key whose
    estimated Jaccard similarity is >= threshold. The rows hold whole band groups. With `drop_exact`, only the
    first row of each exact key takes part (the others are exact duplicates, removed by the step before; all
    of them share every band key, so each group sees them all)."""
    order_by = np.lexsort((orders, band))
    band, orders, signatures = band[order_by], np.asarray(orders)[order_by], np.asarray(signatures)[order_by]
    ids, exact = [ids[k] for k in order_by], [exact[k] for k in order_by]
    starts = np.flatnonzero(np.r_[True, band[1:] != band[:-1]])
    out = []
    for lo, hi in zip(starts, np.r_[starts[1:], len(band)]):
        if hi - lo < 2:
            continue
        members, seen = [], set()
        for k in range(lo, hi):   # ascending order: the first of an exact key comes first
            if drop_exact and exact[k] in seen:
                continue
            seen.add(exact[k])
            members.append(k)
        for i, a in enumerate(members[:-1]):
            rest = members[i + 1:]
            # datasketch's estimate: the share of equal hash values, as float64
            same = np.count_nonzero(signatures[rest] == signatures[a], axis=1)
            for b, n in zip(rest, same):
                j = np.float64(n) / np.float64(signatures.shape[1])
                if j >= threshold:
                    out.append((int(orders[a]), ids[a], int(orders[b]), ids[b], float(j)))
    return out


def greedy_near_duplicates(edges: Iterable[tuple]) -> list[tuple[int, str]]:
    """(order, detail) of the rows near_duplicate_removals removes, from the pairs near_duplicate_edges found
    (each pair may come more than once, from several bands): in order, a row is removed when an earlier row it
    is similar to was kept; the detail names the most similar kept one."""
    earlier: dict[int, dict[int, tuple[float, str]]] = {}
    for a, a_id, b, _, j in edges:
        earlier.setdefault(b, {})[a] = (j, a_id)
    removed: dict[int, str] = {}
    for b in sorted(earlier):
        similar = [sim for a, sim in earlier[b].items() if a not in removed]
        if similar:
            j, k = max(similar)
            removed[b] = f"~{j:.2f} Jaccard with {k}"
    return sorted(removed.items())


def split_key(ids: Iterable[str], seed: int) -> np.ndarray:
    """uint64 per id: where it falls in the seeded order that deals records into holdout and shards (ties, if
    two ids ever hashed alike, go by id). The order depends on nothing but the id and the seed."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(f"{seed}\0{i}".encode(), digest_size=8).digest(), "big")
                        for i in ids), dtype=np.uint64)


def split_starts(count: int, shards: int, holdout: int) -> list[int]:
    """Rank (in split-key order) of the first record of each shard D0..DN-1; ranks below the first are the
    held-out set. Shard sizes differ by at most one. A record's segment (0: held out, k + 1: shard Dk) is
    np.searchsorted(starts, rank, side="right")."""
    if holdout + shards > count:
        raise InputError(f"only {count} instructions are left after cleaning: they cannot fill "
                         f"split.holdout={holdout} and split.shards={shards} non-empty shards (lower them, or "
                         f"relax the cleaning thresholds)")
    bounds = np.linspace(0, count - holdout, shards + 1).round().astype(int)
    return [holdout + int(b) for b in bounds[:-1]]


def split_groups(counts: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous runs of split-key ranges (a histogram's buckets, `counts` records each) holding about `rows`
    records: (first bucket, rank of its first record) of each run. A run's records, sorted, have consecutive
    ranks from there, so each can be placed without seeing any other."""
    before = np.cumsum(counts) - counts
    run = before // max(1, rows)
    firsts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    return firsts, before[firsts]
