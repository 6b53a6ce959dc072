import re
from pathlib import Path

import pytest
import yaml

from arena_ray import settings as cfg
from arena_ray.errors import ConfigError
from arena_ray.settings import from_dict
from arena_ray.settings.testset import TestsetJob

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_configs_load():
    import yaml

    from arena_ray.settings.data import DataJob

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name == "reference.yaml":
            continue
        if path.name == "data.yaml":
            assert cfg.load(path, schema=DataJob).sources
            continue
        if "sources" in yaml.safe_load(path.read_text()):
            assert cfg.load(path, schema=TestsetJob).judge is not None
            continue
        loaded = cfg.load(path)
        assert loaded.judge is None or loaded.judge.model in loaded.models
        assert loaded.arena is None or set(loaded.arena.competitors) <= set(loaded.models)


def test_local_defaults_and_overrides():
    c = cfg.load(ROOT / "configs/local.yaml", ["instructions.limit=3", "models.smollm2.replicas=2",
                                                 "judge.disagreement=tie", "ray.address=auto"])
    assert c.instructions.limit == 3
    assert c.models["smollm2"].replicas == 2
    assert c.judge.disagreement == "tie"
    assert c.ray.address == "auto"
    # defaults live in the schema
    assert c.serve.http_host == "127.0.0.1"
    assert c.judge.max_attempts == 3


def test_judge_shares_competitor_deployment():
    c = cfg.load(ROOT / "configs/local.yaml")
    assert c.served_models() == c.arena.competitors  # the judge (smollm2) is also a competitor


@pytest.mark.parametrize("override, needle", [
    ("judge.nonsense=1", "judge.nonsense"),
    ("models.smollm2.replicas=zero", "models.smollm2.replicas"),
    ("models.smollm2.replicas=0", "models.smollm2.replicas"),
    ("arena.competitors=[smollm2, nobody]", "unknown model 'nobody'"),
    ("judge.model=ghost", "judge.model: unknown model 'ghost'"),
    ("judge.model=gpt-4-0314", "replay model and cannot judge"),
    ("judge.disagreement=coinflip", "judge.disagreement"),
    ("arena.pairing=target_vs_all", "target"),
])
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as err:
        cfg.load(ROOT / "configs/local.yaml", [override])
    assert needle in str(err.value)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="not key=value"):
        cfg.load(ROOT / "configs/local.yaml", ["instructions.limit"])
    with pytest.raises(ConfigError, match="not a section"):
        cfg.load(ROOT / "configs/local.yaml", ["run_dir.x=1"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        cfg.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfg.load(bad)


def test_unsafe_yaml_is_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("run_dir: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        cfg.load(evil)


def test_run_identity_ignores_serving_layout_but_not_answers_or_judging():
    base = cfg.load(ROOT / "configs/local.yaml").run_identity()
    scaled = cfg.load(ROOT / "configs/local.yaml", ["models.smollm2.replicas=4", "models.smollm2.num_gpus=1",
                                                      "models.smollm2.vllm.max_num_seqs=4"]).run_identity()
    assert base == scaled
    for override in ("judge.prompt=pairwise-v2-hardened", "models.smollm2.vllm.dtype=bfloat16",
                     "models.gemma-270m.temperature=0.7", "models.gpt-4-0314.path=other.jsonl"):
        assert cfg.load(ROOT / "configs/local.yaml", [override]).run_identity() != base, override


def test_dump_round_trips():
    c = cfg.load(ROOT / "configs/local.yaml")
    import yaml
    assert cfg.from_dict(yaml.safe_load(cfg.dump(c))) == c


def test_run_identity_ignores_explicit_defaults():
    base = cfg.load(ROOT / "configs/local.yaml")
    explicit = cfg.load(ROOT / "configs/local.yaml", ["judge.tie_margin=0.0", "models.smollm2.chat_template=null"])
    assert base.run_identity() == explicit.run_identity()


@pytest.mark.parametrize("section,needle", [
    ({"self_reward": {"model": "nope"}}, "self_reward.model: unknown model 'nope'"),
    ({"self_reward": {"model": "gpt-3.5-turbo-0125"}}, "self_reward.model: 'gpt-3.5-turbo-0125' must be a vllm model"),
    ({"self_reward": {"model": "gpt-4-0314"}}, "reference.model 'gpt-4-0314' is a name of the model being trained"),
    ({"ppo": {"policy": "tiny", "reward": {"source": "pairwise"}}}, "reward.source 'pairwise' needs reward.reference_answers"),
    ({"ppo": {"policy": "gpt-4-0314"}}, "ppo.policy: 'gpt-4-0314' must be a vllm model"),
    ({"ppo": {"policy": "smollm2", "reward": {"source": "rm"}}}, "reward.source 'rm' needs reward.rm_path"),
    ({"ppo": {"policy": "smollm2", "samples_per_prompt": 1}}, "advantage 'grpo' needs samples_per_prompt >= 2"),
    ({"self_reward": {"model": "smollm2", "samples_per_prompt": 1}}, "self_reward.samples_per_prompt"),
])
def test_rl_sections_are_checked(section, needle):
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data.update(section)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        from_dict(data)


def test_a_model_name_with_dots_can_be_overridden(tmp_path):
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["models"]["gpt-4.5"] = {"engine": "replay", "path": "answers.jsonl"}
    path = tmp_path / "dotted.yaml"
    path.write_text(yaml.safe_dump(data))
    quoted = cfg.load(path, ['models."gpt-4.5".num_cpus=0.25', "models[gpt-4.5].path=other.jsonl",
                             "models['gpt-4.5'].env.X=one"])
    assert quoted.models["gpt-4.5"].num_cpus == 0.25 and quoted.models["gpt-4.5"].path == "other.jsonl"
    assert quoted.models["gpt-4.5"].env == {"X": "one"}
    with pytest.raises(ConfigError, match=r'models\."gpt-4\.5"\.num_cpus'):
        cfg.load(path, ['models."gpt-4.5".num_cpus=-1'])   # the error names the key as it can be typed


@pytest.mark.parametrize("key,parts", [
    ("a.b.c", ["a", "b", "c"]), ('models."gpt-4.5".max_tokens', ["models", "gpt-4.5", "max_tokens"]),
    ("models[gpt-4.5].max_tokens", ["models", "gpt-4.5", "max_tokens"]),
    ("models['a=b'].x", ["models", "a=b", "x"]), ("flywheel.stages", ["flywheel", "stages"])])
def test_override_keys(key, parts):
    from arena_ray.settings.loading import parse_override

    assert parse_override(f"{key}=1") == (parts, 1)


@pytest.mark.parametrize("bad", ['models."gpt.x=1', "models[a.x=1", "a..b=1", ".a=1", "a.=1"])
def test_malformed_override_keys(bad):
    with pytest.raises(ConfigError, match="override"):
        cfg.load(ROOT / "configs/local.yaml", [bad])


def test_duplicate_yaml_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text((ROOT / "configs" / "local.yaml").read_text() + "\nrun_dir: elsewhere\n")
    with pytest.raises(ConfigError, match="duplicate key 'run_dir'"):
        cfg.load(path)


@pytest.mark.parametrize("override", ["judge.tie_margin=.inf", "rating.scale=.nan", "rating.scale=0",
                                      "models.smollm2.temperature=.nan"])
def test_non_finite_and_out_of_range_numbers_are_refused(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].split(".")[-1]):
        cfg.load(ROOT / "configs/local.yaml", [override])


def test_sections_a_workflow_does_not_use_can_be_left_out():
    ppo = cfg.load(ROOT / "configs" / "ppo.yaml")
    assert ppo.arena is None and ppo.ppo is not None
    data = yaml.safe_load((ROOT / "configs" / "ppo.yaml").read_text())
    data["ppo"]["reward"] = {"source": "rm", "rm_path": "rm"}
    del data["judge"]
    assert from_dict(data).judge is None          # an RM reward needs no judge
    data["ppo"]["reward"] = {"source": "judge"}
    with pytest.raises(ConfigError, match="needs a 'judge' section"):
        from_dict(data)


def test_stored_configs_carry_no_secrets():
    c = cfg.load(ROOT / "configs/local.yaml", ["models.smollm2.env.HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz",
                                                "models.smollm2.env.WANDB_API_KEY=short",
                                                "models.smollm2.env.MY_URL=https://x/?t=sk-0123456789abcdefghij",
                                                "models.gpt-4-0314.path=/keys/sk-proj-0123456789abcdefghij.jsonl"])
    stored = cfg.dump(c)
    assert "hf_abcdef" not in stored and "sk-proj-0123" not in stored and "short" not in stored
    env = yaml.safe_load(stored)["models"]["smollm2"]["env"]
    assert env["HF_TOKEN"] == env["WANDB_API_KEY"] == "<redacted>" and env["MY_URL"] == "https://x/?t=<redacted>"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == c.models["smollm2"].env["VLLM_CPU_KVCACHE_SPACE"]  # not a secret: kept
    data = yaml.safe_load(stored)
    assert data["models"]["gpt-4-0314"]["path"] == "/keys/<redacted>.jsonl"
    assert data["judge"] == yaml.safe_load(cfg.dump(cfg.load(ROOT / "configs/local.yaml")))["judge"]


@pytest.mark.parametrize("name, needle", [("HOME", "system variable"), ("path", "system variable"),
                                          ("MY KEY", "not an environment variable name"),
                                          ("$OPENAI_API_KEY", "not an environment variable name")])
def test_api_key_env_must_name_a_key_variable(name, needle):
    data = yaml.safe_load((ROOT / "configs/local.yaml").read_text())
    data["models"]["ext"] = {"engine": "openai", "openai": {"model": "m", "api_key_env": name}}
    with pytest.raises(ConfigError, match=rf"models\.ext\.openai\.api_key_env.*{needle}"):
        from_dict(data)


@pytest.mark.parametrize("override, needle", [
    ("ray.num_cpus=true", "ray.num_cpus: .*a number is expected, not true"),
    ("models.smollm2.max_tokens=false", "max_tokens: .*a number is expected, not false"),
    ("rating.seed=-1", "rating.seed: Input should be greater than or equal to 0"),
    ("rating.bootstrap_rounds=1000000000", "bootstrap_rounds: Input should be less than or equal to 100000"),
])
def test_booleans_are_not_numbers_and_counts_are_bounded(override, needle):
    with pytest.raises(ConfigError, match=needle):
        cfg.load(ROOT / "configs/local.yaml", [override])


@pytest.mark.parametrize("name, needle", [("bad name/x", "path separator"), (" smollm2", "whitespace"),
                                          ("a\tb", "control character"), ("m" * 200, "characters long")])
def test_model_names_follow_the_name_rule(name, needle):
    data = yaml.safe_load((ROOT / "configs/local.yaml").read_text())
    data["models"][name] = {"engine": "replay", "path": "x.jsonl"}
    with pytest.raises(ConfigError, match=f"models: the name .* {needle}"):
        from_dict(data)


def test_a_cleaning_window_that_keeps_nothing_is_refused():
    from arena_ray.settings.data import DataJob
    with pytest.raises(ConfigError, match="min_chars .* is above max_chars"):
        from_dict({"out_dir": "x", "sources": [{"path": "a.jsonl"}], "clean": {"min_chars": 500, "max_chars": 10}},
                  schema=DataJob)


def test_override_syntax_problems_are_named():
    with pytest.raises(ConfigError, match=r"unclosed \" in its key"):
        cfg.load(ROOT / "configs/local.yaml", ['models."gpt-4.5.max_tokens=1'])


def test_version_overrides_must_be_model_settings():
    with pytest.raises(ConfigError, match=r"version_overrides: \['bogus'\] are not model settings"):
        cfg.load(ROOT / "configs/local.yaml", ["flywheel.version_overrides.bogus=1"])
