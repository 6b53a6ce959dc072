"""Human-labelled pair readers: every set in ../shared/data/preferences/ and the generic JSONL, told apart by
their fields; bad records named by file, record and field."""
from __future__ import annotations

import json

import pytest

from arena_ray.data.preferences import SHIPPED, load_card_pairs, load_pairs
from arena_ray.errors import InputError
from tests.helpers import SHARED_DATA

PREFS = SHARED_DATA / "preferences"


def test_llmbar_and_faireval_keep_label_and_order():
    raw = json.loads((PREFS / "llmbar_natural.json").read_text())
    pairs = load_pairs(PREFS / "llmbar_natural.json")
    assert len(pairs) == len(raw) == 100
    for rec, p in zip(raw, pairs):
        assert (p.instruction, p.response_1, p.response_2) == (rec["input"], rec["output_1"], rec["output_2"])
        assert p.label == (1 if rec["label"] == 1 else -1)
    assert len(load_pairs(PREFS / "faireval.json")) == 66
    assert [p.pair_id for p in load_pairs(PREFS / "faireval.json", offset=10, limit=2)] == ["faireval:10", "faireval:11"]


def test_pandalm_by_majority_and_hh_rlhf_split_at_the_last_turn():
    raw = json.loads((PREFS / "pandalm_testset.json").read_text())[:300]
    pandalm = {p.pair_id: p.label for p in load_pairs(PREFS / "pandalm_testset.json", limit=300)}
    for rec in raw:  # every record with a majority of its three annotators, labelled by it
        votes = [rec[f"annotator{k}"] for k in (1, 2, 3)]
        top = max(set(votes), key=votes.count)
        assert pandalm.get(str(rec["idx"])) == ({0: 0, 1: 1, 2: -1}[top] if votes.count(top) >= 2 else None)
    assert set(pandalm.values()) == {-1, 0, 1}
    hh = load_pairs(PREFS / "hh_rlhf_harmless_test.jsonl", limit=20)
    first = json.loads((PREFS / "hh_rlhf_harmless_test.jsonl").open().readline())
    assert hh[0].instruction in first["chosen"] and "\n\nAssistant:" not in hh[0].response_1
    assert first["chosen"].endswith(hh[0].response_1)  # record 0: the chosen answer shown as a
    assert {p.label for p in hh} == {1, -1}            # positions alternate, so order bias is not agreement


def test_generic_jsonl_and_the_shipped_set(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"id": "q1", "question": "2+2?", "answer_a": "4", "answer_b": "5", "winner": "a"}\n'
                    '{"question": "hi", "answer_a": "hello", "answer_b": "hey", "winner": "tie"}\n')
    pairs = load_pairs(path)
    assert [(p.pair_id, p.label) for p in pairs] == [("q1", 1), ("mine:1", 0)]
    shipped = load_card_pairs(None)
    assert len(shipped) == 24 and sum(p.label == 1 for p in shipped) == 12
    assert load_card_pairs([str(SHIPPED)], limit=3) == shipped[:3]


@pytest.mark.parametrize("record,message", [
    ({"question": "q", "answer_a": "x", "answer_b": "y", "winner": "left"}, r"\[0\]: field 'winner' must be a, b or tie"),
    ({"question": "q", "answer_a": "", "answer_b": "y", "winner": "a"}, r"\[0\]: field 'answer_a' must be a non-empty"),
    ({"question": "q", "answer_a": None, "answer_b": "y", "winner": "a"}, r"field 'answer_a' must be a non-empty"),
    ({"input": "q", "output_1": "x", "output_2": "y", "label": 3}, r"\[0\]: field 'label' must be 1 or 2"),
    ({"input": "q", "output_1": "x", "output_2": "y", "label": float("nan")}, r"field 'label' must be 1 or 2"),
    ({"prompt": "q", "completion": "x"}, r"unknown human-labelled format"),
])
def test_bad_records_are_named(tmp_path, record, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=message) as err:
        load_pairs(path)
    assert str(path) in str(err.value)


def test_duplicate_ids_across_files_and_missing_files(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(
            '{"id": "same", "question": "q", "answer_a": "x", "answer_b": "y", "winner": "b"}\n')
    with pytest.raises(InputError, match="pair id 'same' also in"):
        load_card_pairs([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    with pytest.raises(InputError, match="not found"):
        load_pairs(tmp_path / "missing.jsonl")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="expected records"):
        load_pairs(tmp_path / "c.json")
