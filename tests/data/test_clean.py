"""The pure cleaning decisions: each step removes what it should, charges it to itself, and keeps the first."""
from __future__ import annotations

import pytest

from arena_ray.data import clean
from arena_ray.errors import InputError
from arena_ray.records import Instruction

BASE = ("Write a Python function that parses an ISO 8601 timestamp with a timezone offset and returns a "
        "timezone-aware datetime object, raising ValueError with a helpful message for malformed input.")


def notes(texts: dict[str, str]) -> list[clean.Annotation]:
    return [clean.annotate(Instruction(i, t, "test"), num_perm=128, ngram=5) for i, t in texts.items()]


def test_length_bounds_name_the_violation():
    got = clean.length_removals(notes({"short": "hi", "ok": BASE, "long": BASE * 20}), 16, 2000)
    assert [(r.instruction_id, r.detail) for r in got] == [("short", "2 chars < 16"), ("long", f"{len(BASE) * 20} chars > 2000")]


def test_language_filter_drops_only_confident_other_languages():
    got = clean.language_removals(notes({
        "en": "How can I improve my time management skills at work?",
        "de": "Wie kann ich mein Zeitmanagement im Büro verbessern, wenn ich viele Besprechungen habe?",
        "code": "def f(x): return x+1",
    }), keep=("en",), min_confidence=0.8)
    assert [r.instruction_id for r in got] == ["de"]
    assert got[0].detail.startswith("de (")
    assert clean.language_removals(notes({"de": "Wie kann ich mein Zeitmanagement verbessern?"}), (), 0.8) == []


def test_exact_duplicates_ignore_case_and_spacing_and_keep_the_first():
    got = clean.exact_duplicate_removals(notes({"a": BASE, "b": "  " + BASE.upper().replace(" ", "   "), "c": "other text here"}))
    assert [(r.instruction_id, r.detail) for r in got] == [("b", "duplicate of a")]


def test_near_duplicates_by_minhash_lsh():
    near = BASE.replace("helpful message", "clear message")
    unrelated = "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences."
    got = clean.near_duplicate_removals(notes({"a": BASE, "b": near, "c": unrelated}), threshold=0.6, num_perm=128)
    assert [r.instruction_id for r in got] == ["b"]
    assert "with a" in got[0].detail
    # A threshold above their similarity keeps both.
    assert clean.near_duplicate_removals(notes({"a": BASE, "b": near}), threshold=0.95, num_perm=128) == []


def test_contamination_against_a_benchmark():
    bench = [Instruction("q1", BASE, "bench")]
    train = [Instruction("t1", "Please: " + BASE, "train"), Instruction("t2", "Tell me a joke about cats.", "train")]
    got = clean.contamination_removals(train, bench, ngram=8, threshold=0.5)
    assert [r.instruction_id for r in got] == ["t1"] and "q1" in got[0].detail


def test_split_is_by_a_hash_of_the_id_with_the_permutations_sizes():
    import numpy as np

    ids = [f"i{k}" for k in range(23)]
    starts = clean.split_starts(len(ids), shards=4, holdout=3)
    assert starts == [3, 8, 13, 18]                       # held out 3, then shards of 5
    keys = clean.split_key(ids, seed=7)
    order = sorted(range(len(ids)), key=lambda k: (int(keys[k]), ids[k]))
    segment = {ids[k]: int(np.searchsorted(starts, rank, side="right")) for rank, k in enumerate(order)}
    assert [sum(s == k for s in segment.values()) for k in range(5)] == [3, 5, 5, 5, 5]
    assert (clean.split_key(ids, 7) == keys).all() and not (clean.split_key(ids, 8) == keys).all()
    assert clean.split_key(["i5"], 7)[0] == keys[5]       # a record's place depends on its id alone
    with pytest.raises(InputError, match="cannot fill"):
        clean.split_starts(3, shards=4, holdout=0)


def test_split_runs_know_their_first_rank():
    import numpy as np

    counts = np.array([3, 0, 7, 1, 1, 0, 9, 2])
    firsts, ranks = clean.split_groups(counts, rows=5)
    assert list(firsts) == [0, 3, 7] and list(ranks) == [0, 10, 21]   # a run starts where a rank crosses 5k
    assert list(clean.split_groups(counts, rows=100)[0]) == [0]


def variants(seed: int = 0, bases: int = 12, chain: int = 6) -> dict[str, str]:
    """Texts in chains (each a few words from the one before, so neighbours are near duplicates and the ends of a
    chain may not be), exact copies, and unrelated texts, in a shuffled order."""
    import random

    rng = random.Random(seed)
    vocab = BASE.lower().replace(",", "").replace(".", "").split() + ["garden", "river", "market", "teacher", "music"]
    texts = []
    for b in range(bases):
        words = [rng.choice(vocab) for _ in range(40)]
        for k in range(chain):
            words = list(words)
            words[rng.randrange(len(words))] = rng.choice(vocab) + str(k)
            texts.append(" ".join(words))
        texts.append(texts[-1].upper())                    # an exact duplicate (case)
    rng.shuffle(texts)
    return {f"t{k:03d}": t for k, t in enumerate(texts)}


@pytest.mark.parametrize("threshold, exact", [(0.8, True), (0.5, True), (0.7, False)])
def test_near_duplicates_by_band_groups_are_the_sequential_lsh(threshold, exact):
    """The pipeline's formulation — rows grouped by band key (in arbitrary partitions), pairs checked, then the
    greedy pass over pairs — removes the same records with the same details as MinHashLSH in table order."""
    import numpy as np

    rows = notes(variants())
    if exact:
        got_exact = clean.exact_duplicates(list(range(len(rows))), [a.instruction_id for a in rows],
                                           [a.exact_key for a in rows])
        want_exact = clean.exact_duplicate_removals(rows)
        assert [(rows[o].instruction_id, d) for o, d in sorted(got_exact)] == \
            [(r.instruction_id, r.detail) for r in want_exact]
        seq = clean.apply_removals(rows, want_exact)
    else:
        seq = rows
    want = clean.near_duplicate_removals(seq, threshold, num_perm=128)
    assert len(want) > 5
    bands, per_band = clean.lsh_bands(threshold, 128)
    sig = np.stack([a.minhash for a in rows])
    keys = clean.band_keys(sig, bands, per_band)
    order = np.repeat(np.arange(len(rows)), bands)
    flat = keys.ravel()
    edges = []
    for part in range(3):                                  # three partitions, each holding whole band groups
        mine = np.flatnonzero(flat % np.uint64(3) == part)
        edges += clean.near_duplicate_edges(flat[mine], order[mine], [rows[o].instruction_id for o in order[mine]],
                                            [rows[o].exact_key for o in order[mine]], sig[order[mine]], threshold,
                                            drop_exact=exact)
    got = clean.greedy_near_duplicates(edges)
    assert [(rows[o].instruction_id, d) for o, d in got] == [(r.instruction_id, r.detail) for r in want]


def test_summary_counts_each_step():
    removals = [clean.Removal("a", "length", "x"), clean.Removal("b", "length", "y"), clean.Removal("c", "near_dup", "z")]
    s = clean.summary(10, removals, kept=7)
    assert s["steps"]["length"]["removed"] == 2 and s["steps"]["near_dup"]["removed"] == 1 and s["kept"] == 7


def test_minhashes_of_many_texts_are_each_texts_minhash():
    texts = [BASE, BASE.upper(), "", "hi", "Compose an engaging travel blog post about a recent trip to Hawaii."]
    got = clean.minhashes(texts, num_perm=64, ngram=5)
    assert got.dtype.name == "uint32" and [list(r) for r in got] == [list(clean.minhash(t, 64, 5)) for t in texts]
