"""Bad input through the CLI: exit status 2, one clear line naming what is wrong, nothing lost."""
from __future__ import annotations

import json
import socket

import pytest
import yaml

from arena_ray.cli import main
from tests.helpers import tiny_config_dict


@pytest.fixture
def config_file(tmp_path):
    def write(data: dict) -> str:
        path = tmp_path / "arena.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)
    return write


def base(tmp_path) -> dict:
    # a model folder that exists is enough here: these runs stop before any engine starts
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text("{}")
    return tiny_config_dict(tmp_path / "run", folder)


def run_cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def test_unknown_model_name(tmp_path, config_file, capsys):
    code, err = run_cli(["arena", "--config", config_file(base(tmp_path)), "arena.competitors=[tiny, gpt-5]"], capsys)
    assert code == 2 and "unknown model 'gpt-5'" in err


def test_malformed_instructions_line(tmp_path, config_file, capsys):
    bad = tmp_path / "ins.jsonl"
    bad.write_text('{"uid": "1", "prompt": "ok"}\n{"uid": "2", "prompt": "oops"\n')
    code, err = run_cli(["arena", "--config", config_file(base(tmp_path)), f"instructions.path={bad}"], capsys)
    assert code == 3 and "ins.jsonl:2: malformed JSON line" in err


def test_missing_answers_file(tmp_path, config_file, capsys):
    data = base(tmp_path)
    data["models"]["gpt-4-0314"]["path"] = str(tmp_path / "nowhere.jsonl")
    code, err = run_cli(["arena", "--config", config_file(data)], capsys)
    assert code == 3 and "answers file not found" in err and "nowhere.jsonl" in err


def test_unreachable_openai_endpoint(tmp_path, config_file, capsys):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base(tmp_path)
    data["models"]["api"] = {"engine": "openai", "openai": {"base_url": f"http://127.0.0.1:{port}/v1",
                                                            "model": "m", "connect_timeout_s": 2}}
    data["arena"]["competitors"].append("api")
    code, err = run_cli(["arena", "--config", config_file(data)], capsys)
    assert code == 2 and f"endpoint http://127.0.0.1:{port}/v1 is unreachable" in err


def test_unprepared_model_folder(tmp_path, config_file, capsys):
    data = base(tmp_path)
    data["models"]["tiny"]["path"] = str(tmp_path / "not-a-model")
    code, err = run_cli(["arena", "--config", config_file(data)], capsys)
    assert code == 2 and "not a Hugging Face model folder" in err and "models prepare" in err


def test_run_dir_of_another_arena_is_refused_and_kept(tmp_path, config_file, capsys):
    data = base(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"arena_fingerprint": "0123456789abcdef"}))
    (run / "battles.jsonl").write_text('{"battle_id": "x"}\n')
    code, err = run_cli(["arena", "--config", config_file(data)], capsys)
    assert code == 2 and "run.json is not the record of an arena run" in err and "new directory" in err
    assert (run / "battles.jsonl").read_text() == '{"battle_id": "x"}\n'


def test_bad_override_value(tmp_path, config_file, capsys):
    code, err = run_cli(["arena", "--config", config_file(base(tmp_path)), "judge.max_attempts=0"], capsys)
    assert code == 2 and "judge.max_attempts" in err


@pytest.mark.parametrize("args,code,message", [
    (["--data", "nowhere.jsonl"], 3, "human-labelled pairs not found: nowhere.jsonl"),
    (["--data", "{bad}", "--limit", "0"], 2, "--limit must be at least 1, got 0"),
    (["--data", "{bad}"], 3, "bad.jsonl[0]: field 'winner' must be a, b or tie, got 'left'"),
])
def test_judge_eval_refuses_bad_pairs_before_serving(tmp_path, config_file, capsys, args, code, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer_a": "x", "answer_b": "y", "winner": "left"}\n')
    args = [a.replace("{bad}", str(bad)) for a in args]
    got, err = run_cli(["judge-eval", "--config", config_file(base(tmp_path)), "--out", str(tmp_path / "out"), *args],
                       capsys)
    assert got == code and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_run_dir_that_is_a_file_is_refused_before_anything_starts(tmp_path, config_file, capsys):
    data = base(tmp_path)
    (tmp_path / "taken").write_text("keep")
    data["run_dir"] = str(tmp_path / "taken")
    code, err = run_cli(["arena", "--config", config_file(data)], capsys)
    assert code == 2 and "run_dir" in err and "is a file, not a directory" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "keep"
