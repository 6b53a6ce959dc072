"""A run directory records what decided its answers and verdicts, per model and for the judge: resuming under
other settings is refused naming the field; adding a model is allowed (only its battles run); a setup that
fails leaves nothing a later run would take for a valid run directory."""
from __future__ import annotations

import json

import pytest

from arena_ray.errors import ConfigError, InputError
from arena_ray.settings import from_dict
from arena_ray.workflows.arena import check_run_dir, record_run_dir, run_arena
from tests.helpers import tiny_config_dict


def openai_config(tmp_path, **openai) -> dict:
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    data["models"]["remote"] = {"engine": "openai", "openai": {"model": "gpt-x", "base_url": "http://a/v1", **openai}}
    data["arena"]["competitors"] = ["remote", "gpt-4-0314", "gpt-3.5-turbo-0125"]
    return data


def recorded(tmp_path, data: dict) -> None:
    config = from_dict(data)
    run_dir, identity = check_run_dir(config)
    record_run_dir(run_dir, config, identity)


@pytest.mark.parametrize("field,value", [("model", "gpt-y"), ("base_url", "http://b/v1")])
def test_another_endpoint_or_model_is_refused_by_name(tmp_path, field, value):
    recorded(tmp_path, openai_config(tmp_path))
    with pytest.raises(ConfigError, match=rf"models\.remote\.openai\.{field}: .* then, .* now"):
        check_run_dir(from_dict(openai_config(tmp_path, **{field: value})))


def test_another_dtype_or_judge_prompt_is_refused_by_name(tmp_path):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    recorded(tmp_path, data)
    data["models"]["tiny"]["vllm"]["dtype"] = "bfloat16"
    with pytest.raises(ConfigError, match=r"judge\.engine\.vllm\.dtype: 'float32' then, 'bfloat16' now"):
        check_run_dir(from_dict(data))
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    data["judge"]["prompt"] = "pairwise-v2-hardened"
    with pytest.raises(ConfigError, match=r"judge\.prompt"):
        check_run_dir(from_dict(data))


def test_a_new_model_may_join_a_finished_run(tmp_path):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    recorded(tmp_path, data)
    data["models"]["gpt-4-0613"] = {"engine": "replay", "path": "answers.jsonl"}
    data["arena"]["competitors"].append("gpt-4-0613")
    run_dir, identity = check_run_dir(from_dict(data))
    assert set(identity["models"]) == {"tiny", "gpt-4-0314", "gpt-3.5-turbo-0125", "gpt-4-0613"}
    layout = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    layout["models"]["tiny"]["replicas"] = 3   # serving layout is not part of the identity
    check_run_dir(from_dict(layout))


def test_a_failed_setup_leaves_no_run_directory(tmp_path):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "no-such-model")
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):
        run_arena(from_dict(data), show_progress=False)
    assert not (tmp_path / "run").exists()
    data["instructions"]["path"] = str(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="not found"):
        run_arena(from_dict(data), show_progress=False)
    assert not (tmp_path / "run").exists()
    assert json.dumps(data)  # the config itself was fine


def test_fresh_sets_the_old_run_aside_and_card_settings_never_block_a_resume(tmp_path):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "no-such-model")
    recorded(tmp_path, data)
    data["judge"].update({"card": True, "card_limit": 3, "card_cache_dir": str(tmp_path / "cards")})
    check_run_dir(from_dict(data))                      # the card does not change a verdict
    data["judge"]["tie_margin"] = 1.0
    with pytest.raises(ConfigError, match=r"judge\.tie_margin: .*pass --fresh"):
        check_run_dir(from_dict(data))
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):  # set aside first, then setup
        run_arena(from_dict(data), show_progress=False, fresh=True)
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.")]
    assert json.loads((aside / "run.json").read_text())["judge"]["model"] == "tiny"
    assert not (tmp_path / "run").exists()
