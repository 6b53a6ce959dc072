import json

import pytest

from arena_ray.data.battles import import_vicuna_reviews, read_battles
from arena_ray.errors import InputError
from arena_ray.rating.bradley_terry import fit
from tests.data.test_ingest import DATA, needs_data


def test_fastchat_jsonl_and_treatments(tmp_path):
    f = tmp_path / "b.jsonl"
    rows = [{"model_a": "x", "model_b": "y", "winner": "model_a"}, {"model_a": "x", "model_b": "x", "winner": "tie"},
            {"model_a": "y", "model_b": "z", "winner": "tie (bothbad)"}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    bf = read_battles(f)
    assert [b.triple() for b in bf.battles] == [("x", "y", "model_a"), ("y", "z", "tie (bothbad)")]
    assert bf.self_battles_dropped == 1
    f.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "draw"}) + "\n")
    with pytest.raises(InputError, match=r"b.jsonl:1: unknown winner label 'draw'"):
        read_battles(f)
    f.write_text(json.dumps({"model_a": "x", "model_b": "x", "winner": "tie"}) + "\n")
    with pytest.raises(InputError, match="no battles to rate.*1 self-battles dropped"):
        read_battles(f)
    f.write_text("")
    with pytest.raises(InputError, match="no battles"):
        read_battles(f)
    with pytest.raises(InputError, match="not found"):
        read_battles(tmp_path / "none.jsonl")


def test_run_directory_joins_answer_texts(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    (tmp_path / "battles.jsonl").write_text(json.dumps({"question_id": "q1", "model_a": "a", "model_b": "b",
                                                        "winner": "model_b"}) + "\n")
    pq.write_table(pa.table({"instruction_id": ["q1", "q1"], "model": ["a", "b"], "text": ["short", "long one"],
                             "completion_tokens": [1, 2]}), tmp_path / "generations.parquet")
    b = read_battles(tmp_path).battles[0]
    assert (b.text_a, b.text_b, b.tokens_a, b.tokens_b) == ("short", "long one", 1, 2)


@needs_data
def test_vicuna_reviews_import_resolves_models():
    bf = import_vicuna_reviews(DATA / "battles/vicuna_bench_2023_reviews", DATA / "answers/vicuna_bench_2023")
    assert len(bf.battles) + bf.self_battles_dropped == 1440
    models = {m for b in bf.battles for m in (b.model_a, b.model_b)}
    assert {"llama-13b-v1", "alpaca-13b-v1", "bard-20230327", "gpt-3.5-turbo-20230327"} <= models
    ratings = [r.model for r in fit([b.triple() for b in bf.battles], bootstrap_rounds=0)]
    assert ratings.index("gpt-3.5-turbo-20230327") < ratings.index("alpaca-13b-v1") < ratings.index("llama-13b-v1")
