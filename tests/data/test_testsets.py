import numpy as np
import pytest

from arena_ray.data.testsets import find_contamination, mix, ngrams, parse_difficulty, select_diverse, select_hard
from arena_ray.records import Instruction


def inst(i, text="x"):
    return Instruction(f"q{i}", text, "t")


def test_diverse_takes_per_cluster_nearest_to_centroid():
    rng = np.random.default_rng(0)
    centres = np.array([[10, 0], [0, 10], [-10, -10]], dtype=float)
    emb = np.concatenate([c + rng.normal(0, 0.5, (20, 2)) for c in centres])
    emb[0] = centres[0]  # exactly at a centre: must be picked for its cluster
    items = [inst(i) for i in range(len(emb))]
    picked = select_diverse(items, emb, clusters=3, per_cluster=2)
    assert len(picked) == 6 and len({p.cluster for p in picked}) == 3
    assert {p.instruction.instruction_id for p in picked} & {"q0"}
    per_group = {int(p.instruction.instruction_id[1:]) // 20 for p in picked}
    assert per_group == {0, 1, 2}  # one pair from each true group


def test_hard_sorts_by_difficulty_and_skips_unrated():
    items = [inst(i) for i in range(5)]
    hard = select_hard(items, {"q0": 3, "q1": 9, "q2": 9, "q4": 1}, top=3)
    assert [h.instruction.instruction_id for h in hard] == ["q1", "q2", "q0"]
    assert [h.difficulty for h in hard] == [9, 9, 3]


def test_mix_deduplicates():
    from arena_ray.data.testsets import Selected
    a, b = Selected(inst(1)), Selected(inst(2))
    assert [s.instruction.instruction_id for s in mix([a, b], [b, Selected(inst(3))])] == ["q1", "q2", "q3"]


@pytest.mark.parametrize("raw, score", [("7", 7), (" 10", 10), ("Difficulty: 3/10", 3), ("none", None), ("", None)])
def test_parse_difficulty(raw, score):
    assert parse_difficulty(raw) == score


def test_ngram_contamination_and_report():
    test = [Instruction("t1", "Write a Python function that reverses a linked list in place and returns the head", "b")]
    train = [Instruction("a", "Please write a Python function that reverses a linked list in place and returns the head.", "tr"),
             Instruction("b", "Describe the water cycle for a ten year old child in three short paragraphs", "tr")]
    found = find_contamination(train, test, n=5, ngram_threshold=0.5)
    assert [(f.instruction_id, f.reason, f.matched_id) for f in found] == [("a", "ngram", "t1")]
    assert found[0].score >= 0.5
    assert ngrams("a b", 5) == {("a", "b")}


def test_embedding_contamination():
    train = [Instruction("a", "one", "tr"), Instruction("b", "two", "tr")]
    test = [Instruction("t", "uno", "b")]
    found = find_contamination(train, test, n=3, train_embeddings=np.array([[1.0, 0.05], [0.0, 1.0]]),
                               test_embeddings=np.array([[1.0, 0.0]]), cosine_threshold=0.95)
    assert [(f.instruction_id, f.reason) for f in found] == [("a", "embedding")]


def test_real_embeddings_rank_paraphrases_closer():
    from arena_ray.data.embed import Embedder
    e = Embedder()(["How do I reverse a list in Python?", "What is the way to reverse a Python list?",
                    "Recommend a good hiking trail in the Alps."])
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > 0.7 > e[0] @ e[2]
