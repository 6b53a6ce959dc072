import json
from pathlib import Path

import pytest

from arena_ray.data.answers import load_answers
from arena_ray.data.ingest import load_instructions
from arena_ray.errors import InputError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")


@needs_data
@pytest.mark.parametrize("name, count", [("arena_hard_v0.1.jsonl", 500), ("mt_bench.jsonl", 80),
                                         ("vicuna_bench.jsonl", 80), ("alpaca_tiny.json", 100),
                                         ("self_instruct_seed_tasks.jsonl", 175)])
def test_real_instruction_files(name, count):
    items = load_instructions(DATA / "instructions" / name)
    assert len(items) == count
    assert len({i.instruction_id for i in items}) == count
    assert all(i.text.strip() for i in items)


@needs_data
def test_offset_limit_and_arena_hard_ids():
    items = load_instructions(DATA / "instructions/arena_hard_v0.1.jsonl", offset=2, limit=3)
    assert len(items) == 3
    assert items[0].instruction_id == load_instructions(DATA / "instructions/arena_hard_v0.1.jsonl")[2].instruction_id


@needs_data
def test_replay_answers_match_arena_hard_ids():
    answers = load_answers(DATA / "answers/arena_hard_v0.1/gpt-4-0314.jsonl")
    ids = {i.instruction_id for i in load_instructions(DATA / "instructions/arena_hard_v0.1.jsonl")}
    assert len(answers) == 500 and set(answers) == ids
    vicuna = load_answers(DATA / "answers/vicuna_bench_2023/answer_bard.jsonl")
    assert len(vicuna) == 80 and "1" in vicuna


def test_malformed_line_names_file_and_line(tmp_path):
    f = tmp_path / "ins.jsonl"
    f.write_text('{"uid": "a", "prompt": "hello"}\n{"uid": "b", "prompt": \n')
    with pytest.raises(InputError, match=r"ins.jsonl:2: malformed JSON"):
        load_instructions(f)


@pytest.mark.parametrize("line, needle", [
    ('{"uid": "a", "prompt": ""}', "field 'prompt' must be a non-empty string"),
    ('{"question_id": 1, "turns": []}', "field 'turns' must be a non-empty list"),
    ('{"foo": "bar"}', "no instruction field"),
    ('[1, 2]', "expected a JSON object"),
    ('{"uid": null, "prompt": "hello"}', "field 'uid' must be a non-empty string or an integer, got None"),
    ('{"question_id": true, "turns": ["q"]}', "field 'question_id' must be a non-empty string or an integer"),
    ('{"instruction": "do it", "input": 5}', "field 'input' must be a string, got int"),
    ('{"instruction": "do it", "instances": [{"input": ["x"]}]}', r"field 'instances\[0\].input' must be a string"),
    ('{"prompt": "p", "id": 1.5}', "field 'id' must be a non-empty string or an integer"),
])
def test_bad_records_name_the_field(tmp_path, line, needle):
    f = tmp_path / "ins.jsonl"
    f.write_text(line + "\n")
    with pytest.raises(InputError, match=needle):
        load_instructions(f)


def test_duplicate_ids_and_empty_and_missing(tmp_path):
    f = tmp_path / "ins.jsonl"
    f.write_text('{"uid": "a", "prompt": "x"}\n{"uid": "a", "prompt": "y"}\n')
    with pytest.raises(InputError, match="duplicate instruction id 'a'"):
        load_instructions(f)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no instructions"):
        load_instructions(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="not found"):
        load_instructions(tmp_path / "missing.jsonl")


def test_answers_errors(tmp_path):
    with pytest.raises(InputError, match="answers file not found"):
        load_answers(tmp_path / "nope.jsonl")
    f = tmp_path / "ans.jsonl"
    f.write_text('{"uid": "a", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": {}}]}\n')
    with pytest.raises(InputError, match=r"ans.jsonl:1: last message has no answer text"):
        load_answers(f)
    f.write_text('{"question_id": 3, "choices": [{"turns": ["fastchat answer"]}]}\n')
    assert load_answers(f) == {"3": "fastchat answer"}


def test_sharegpt_without_a_human_turn_names_the_record(tmp_path):
    path = tmp_path / "sg.json"
    path.write_text('[{"id": "x", "conversations": [{"from": "gpt", "value": "hello"}]}]')
    with pytest.raises(InputError, match=r"sg.json\[0\]: field 'conversations' has no human turn"):
        load_instructions(path)


def test_self_instruct_appends_the_first_instance_input(tmp_path):
    path = tmp_path / "si.jsonl"
    path.write_text('{"id": "t1", "instruction": "Fix the grammar.", "instances": [{"input": "me go home", "output": ""}]}\n')
    (inst,) = load_instructions(path)
    assert inst.instruction_id == "t1" and inst.text == "Fix the grammar.\n\nme go home"


def test_hub_style_chat_datasets_as_parquet_and_jsonl(tmp_path):
    """`datasets` exports (`to_parquet` / `to_json`) of chat data: `messages` lists, ShareGPT `conversations`, and
    Alpaca records, each told by its content."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt_id": "p1", "messages": [{"role": "system", "content": "Be kind."},
                                             {"role": "user", "content": "Name a prime."},
                                             {"role": "assistant", "content": "7"}]},
            {"prompt_id": "p2", "messages": [{"role": "user", "content": "And another?"}]}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ultrachat.parquet")
    got = load_instructions(tmp_path / "ultrachat.parquet")
    assert [(i.instruction_id, i.text) for i in got] == [("p1", "Name a prime."), ("p2", "And another?")]
    (tmp_path / "sharegpt.jsonl").write_text(json.dumps({"id": "s1", "conversations": [
        {"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello"}]}) + "\n")
    assert [i.text for i in load_instructions(tmp_path / "sharegpt.jsonl")] == ["Hi there"]
    (tmp_path / "nouser.jsonl").write_text(json.dumps({"messages": [{"role": "assistant", "content": "x"}]}) + "\n")
    with pytest.raises(InputError, match=r"nouser.jsonl:1: field 'messages' has no user turn"):
        load_instructions(tmp_path / "nouser.jsonl")
