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


def test_split_is_seeded_disjoint_and_complete():
    ids = [f"i{k}" for k in range(23)]
    holdout, shards = clean.split(ids, shards=4, holdout=3, seed=7)
    flat = holdout + [i for s in shards for i in s]
    assert sorted(flat) == sorted(ids) and len(set(flat)) == len(ids)
    assert len(holdout) == 3 and [len(s) for s in shards] == [5, 5, 5, 5]
    assert clean.split(ids, 4, 3, seed=7) == (holdout, shards)
    assert clean.split(ids, 4, 3, seed=8) != (holdout, shards)
    with pytest.raises(InputError, match="cannot fill"):
        clean.split(ids[:3], shards=4, holdout=0, seed=0)


def test_summary_counts_each_step():
    removals = [clean.Removal("a", "length", "x"), clean.Removal("b", "length", "y"), clean.Removal("c", "near_dup", "z")]
    s = clean.summary(10, removals, kept=7)
    assert s["steps"]["length"]["removed"] == 2 and s["steps"]["near_dup"]["removed"] == 1 and s["kept"] == 7
