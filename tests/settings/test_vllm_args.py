"""vLLM engine arguments (`vllm.extra`) are checked at load against the installed vLLM's AsyncEngineArgs, read
from its source (vllm is never imported by the settings layer)."""
import subprocess
import sys
from pathlib import Path

import pytest

from arena_ray import settings as cfg
from arena_ray.errors import ConfigError
from arena_ray.settings import vllm_args
from arena_ray.settings.vllm_args import dataclass_fields, engine_arg_names

ROOT = Path(__file__).resolve().parents[2]
needs_vllm = pytest.mark.skipif(vllm_args.arg_utils_path() is None, reason="vLLM is not installed")


def _config(vllm: dict) -> dict:
    return {"models": {"small": {"engine": "vllm", "path": "m", "vllm": vllm},
                       "other": {"engine": "vllm", "path": "m"}}}


@needs_vllm
def test_names_are_the_installed_engine_args():
    names = engine_arg_names()
    # Fields of vLLM's EngineArgs (and AsyncEngineArgs): fails if vLLM renames them or the reader breaks.
    assert {"max_model_len", "kv_cache_dtype", "quantization", "enable_prefix_caching", "enable_log_requests"} <= names
    assert "max_model_length" not in names
    assert len(names) > 50


@needs_vllm
def test_a_misspelt_engine_arg_fails_at_load_naming_model_key_and_match():
    with pytest.raises(ConfigError) as err:
        cfg.from_dict(_config({"extra": {"kv_cache_dtyp": "auto", "enable_prefix_caching": True}}))
    msg = str(err.value)
    assert "models.small.vllm.extra" in msg and "'kv_cache_dtyp'" in msg and "'kv_cache_dtype'" in msg
    assert "enable_prefix_caching" not in msg and "models.other" not in msg


@needs_vllm
def test_override_of_an_engine_arg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  small: {engine: vllm, path: m}\n")
    good = cfg.load(path, ["models.small.vllm.extra.kv_cache_dtype=auto", "models.small.vllm.extra.quantization=null"])
    assert good.models["small"].vllm.extra == {"kv_cache_dtype": "auto", "quantization": None}
    with pytest.raises(ConfigError, match=r"models\.small\.vllm\.extra: .*'max_model_length'.*'max_model_len'"):
        cfg.load(path, ["models.small.vllm.extra.max_model_length=512"])


@needs_vllm
def test_vllm_section_points_to_extra_and_to_typed_settings():
    with pytest.raises(ConfigError, match=r"models\.small\.vllm: .*'kv_cache_dtype'.*vllm\.extra\.kv_cache_dtype"):
        cfg.from_dict(_config({"kv_cache_dtype": "fp8"}))
    with pytest.raises(ConfigError, match=r"unknown setting 'max_model_length'; did you mean 'max_model_len'"):
        cfg.from_dict(_config({"max_model_length": 512}))
    # a typed setting given again in extra would silently win over it
    with pytest.raises(ConfigError, match=r"'max_model_len' has a setting of its own: set vllm\.max_model_len"):
        cfg.from_dict(_config({"extra": {"max_model_len": 512}}))


def test_without_vllm_the_check_is_skipped(monkeypatch, caplog):
    monkeypatch.setattr(vllm_args, "arg_utils_path", lambda: None)
    engine_arg_names.cache_clear()
    try:
        with caplog.at_level("DEBUG", logger=vllm_args.__name__):
            loaded = cfg.from_dict(_config({"extra": {"anything_goes": 1}}))
        assert loaded.models["small"].vllm.extra == {"anything_goes": 1}
        assert "not installed" in caplog.text
    finally:
        engine_arg_names.cache_clear()


def test_reader_follows_dataclass_rules():
    source = '''
from dataclasses import dataclass, field
from typing import ClassVar

@dataclass
class EngineArgs:
    """doc"""
    model: str = "m"
    max_model_len: int | None = None
    registry: ClassVar[dict] = {}
    derived: int = field(init=False, default=0)
    def method(self): pass

@dataclass
class AsyncEngineArgs(EngineArgs):
    enable_log_requests: bool = False

class NotADataclass:
    x: int = 0
'''
    assert dataclass_fields(source, "AsyncEngineArgs") == {"model", "max_model_len", "enable_log_requests"}
    assert dataclass_fields(source, "NotADataclass") is None
    assert dataclass_fields(source, "Missing") is None


def test_loading_never_imports_vllm():
    code = ("import sys; from arena_ray import settings as cfg; "
            "cfg.load('configs/local.yaml', ['models.smollm2.vllm.extra.kv_cache_dtype=auto']); "
            "assert 'vllm' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_override_of_a_yaml_alias_changes_one_section():
    # configs/local.yaml shares one vllm section between two models (`vllm: *cpu_vllm`)
    c = cfg.load(ROOT / "configs/local.yaml", ["models.smollm2.vllm.max_model_len=512"])
    assert c.models["smollm2"].vllm.max_model_len == 512
    assert c.models["gemma-270m"].vllm.max_model_len == 4096


@pytest.mark.slow
@needs_vllm
def test_reader_matches_dataclasses_fields_of_the_imported_engine_args():
    """The source reader against vLLM itself (importing vllm takes seconds: slow tier)."""
    import dataclasses

    from vllm.engine.arg_utils import AsyncEngineArgs

    assert engine_arg_names() == {f.name for f in dataclasses.fields(AsyncEngineArgs) if f.init}
