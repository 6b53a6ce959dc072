"""The OpenRLHF hand-off: the command line built from the `ppo:` section, parsed and checked by the argument parser
of the pinned OpenRLHF release's own source (its wheel, downloaded by scripts/setup.sh), the prompt file it reads,
and a dry run through the CLI."""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from arena_ray.errors import ConfigError
from arena_ray.settings import from_dict, load
from arena_ray.train.openrlhf import OPENRLHF_VERSION, build_command
from arena_ray.workflows.openrlhf import hand_off
from tests.helpers import run_cli, tiny_config_dict

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".cache" / "wheels"


def openrlhf_source(member: str) -> str:
    wheels = sorted(WHEELS.glob(f"openrlhf-{OPENRLHF_VERSION}-*.whl"))
    assert wheels, f"OpenRLHF {OPENRLHF_VERSION}'s wheel is missing from {WHEELS}: run scripts/setup.sh"
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.read(next(n for n in wheel.namelist() if n.endswith(member))).decode()


class OpenRLHFCli:
    """`openrlhf.cli.train_ppo_ray` as released: its `__main__` block up to `parse_args()` builds the parser; the
    statements after it (up to `train(args)`) check and complete the parsed arguments with asserts. Importing the
    module would need CUDA-era deps (deepspeed, vllm of its own pin), so the two parts are cut from its source."""

    def __init__(self):
        tree = ast.parse(openrlhf_source("openrlhf/cli/train_ppo_ray.py"))
        main = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
        cut = next(i for i, st in enumerate(main.body) if "parse_args()" in ast.unparse(st))
        skipped = ("hierarchize", "use_ms", "train(args)")
        self.checks = [st for st in main.body[cut + 1:]
                       if not isinstance(st, ast.ImportFrom) and not any(s in ast.unparse(st) for s in skipped)]
        scope = {"argparse": argparse, "os": os, "datetime": datetime}
        exec(compile(ast.Module(body=main.body[:cut], type_ignores=[]), "train_ppo_ray.py", "exec"), scope)
        self.parser: argparse.ArgumentParser = scope["parser"]
        helpers: dict = {}
        exec(openrlhf_source("openrlhf/utils/config.py"), helpers)
        self.hierarchize = helpers["hierarchize"]

    def parse(self, cmd: list[str]):
        assert cmd[1:3] == ["-m", "openrlhf.cli.train_ppo_ray"]
        _, unknown = self.parser.parse_known_args(cmd[3:])
        assert not unknown, f"unknown to OpenRLHF {OPENRLHF_VERSION}'s train_ppo_ray: {unknown}"
        args = self.hierarchize(self.parser.parse_args(cmd[3:]))
        exec(compile(ast.Module(body=self.checks, type_ignores=[]), "train_ppo_ray.py", "exec"),
             {"args": args, "print": lambda *a, **k: None})
        return args


@pytest.fixture(scope="module")
def openrlhf_cli():
    return OpenRLHFCli()


def config(tmp_path, tiny_model_dir, **ppo):
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["ppo"] = {"dir": str(tmp_path / "ppo"), "policy": "tiny", "backend": "openrlhf", "steps": 10,
                   "prompts_per_step": 8, "samples_per_prompt": 4, "advantage": "grpo", "save_every": 5,
                   **ppo}
    data["ppo"]["openrlhf"] = {"dry_run": True, "python": "/opt/openrlhf/bin/python", "micro_rollout_batch_size": 2,
                               "extra_args": ["--logger.logging_steps", "2"], **ppo.get("openrlhf", {})}
    return data


def test_command_for_the_judge_as_remote_reward(tmp_path, tiny_model_dir, openrlhf_cli):
    cfg = from_dict(config(tmp_path, tiny_model_dir))
    cmd = build_command(cfg, tmp_path / "p.jsonl", tmp_path / "out", "http://head:8000/reward/get_reward")
    assert cmd[:3] == ["/opt/openrlhf/bin/python", "-m", "openrlhf.cli.train_ppo_ray"]
    args = openrlhf_cli.parse(cmd)
    assert args.actor.model_name_or_path == str(tiny_model_dir.resolve())
    assert args.reward.remote_url == ["http://head:8000/reward/get_reward"] and args.reward.model_name_or_path is None
    assert args.algo.advantage.estimator == "group_norm" and args.critic.model_name_or_path is None  # critic-free
    assert (args.rollout.n_samples_per_prompt, args.rollout.batch_size, args.data.max_samples) == (4, 8, 80)
    assert args.algo.kl.use_loss and args.algo.kl.estimator == "k3" and args.algo.kl.init_coef == 0.01
    assert args.vllm.sync_backend == "nccl" and args.train.colocate_all and args.ds.param_dtype == "bf16"
    assert args.data.prompt_dataset == str(tmp_path / "p.jsonl") and args.data.input_key == "input"
    assert args.data.apply_chat_template and args.data.max_len == 1024 + 64 and args.rollout.max_new_tokens == 64
    assert args.actor.adam.lr == 1e-6 and args.actor.eps_clip == 0.2 and args.actor.max_norm == 1.0
    assert args.ckpt.output_dir == str(tmp_path / "out") and args.ckpt.save_steps == 5 and args.ckpt.load_enable
    assert args.logger.logging_steps == 2  # extra_args reach OpenRLHF after ours


def test_command_for_a_reward_model(tmp_path, tiny_model_dir, openrlhf_cli):
    cfg = from_dict(config(tmp_path, tiny_model_dir, advantage="rloo",
                           reward={"source": "rm", "rm_path": str(tiny_model_dir)},
                           openrlhf={"reward_num_gpus_per_node": 2, "bf16": False, "colocate_all_models": False}))
    args = openrlhf_cli.parse(build_command(cfg, tmp_path / "p.jsonl", tmp_path / "out", None))
    assert args.reward.model_name_or_path == str(tiny_model_dir.resolve()) and args.reward.remote_url is None
    assert args.reward.num_gpus_per_node == 2 and args.reward.normalize_enable
    assert args.algo.advantage.estimator == "rloo" and args.ds.param_dtype == "fp16" and not args.train.colocate_all
    with pytest.raises(ConfigError, match="remote reward URL"):
        build_command(from_dict(config(tmp_path, tiny_model_dir)), tmp_path / "p", tmp_path / "o", None)


def test_the_shipped_cluster_config_passes_openrlhfs_own_checks(openrlhf_cli, tmp_path):
    cfg = load(ROOT / "configs" / "cluster-h100.yaml")
    args = openrlhf_cli.parse(build_command(cfg, tmp_path / "p.jsonl", tmp_path / "out", "http://head:8000/r"))
    assert args.actor.num_nodes * args.actor.num_gpus_per_node == 16 and args.ds.zero_stage == 3
    assert args.vllm.num_engines * args.vllm.tensor_parallel_size == 16


def test_an_unknown_flag_is_caught(tmp_path, tiny_model_dir, openrlhf_cli):
    """What the old command did (0.10-era flat names): the parser of the pinned release rejects it."""
    cfg = from_dict(config(tmp_path, tiny_model_dir, openrlhf={"extra_args": ["--save_steps", "5"]}))
    with pytest.raises(AssertionError, match="--save_steps"):
        openrlhf_cli.parse(build_command(cfg, tmp_path / "p", tmp_path / "o", "http://h/r"))


def test_native_only_settings_are_refused_by_name(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match=r"no counterpart for learner_cpus, use_gpu, reward\.rm_max_length"):
        from_dict(config(tmp_path, tiny_model_dir, use_gpu=True, learner_cpus=2,
                         reward={"source": "judge", "rm_max_length": 512}))
    from_dict(config(tmp_path, tiny_model_dir, backend="native", use_gpu=True))  # the native learner takes them
    with pytest.raises(ConfigError, match=r"= 4 < 8 actor GPUs"):  # OpenRLHF's own start-up assert, at load
        from_dict(config(tmp_path, tiny_model_dir, openrlhf={"micro_rollout_batch_size": 8}))


def test_one_release_is_pinned_everywhere():
    pins = {"Dockerfile": (ROOT / "deploy" / "Dockerfile").read_text(), "pyproject": (ROOT / "pyproject.toml").read_text(),
            "setup.sh": (ROOT / "scripts" / "setup.sh").read_text()}
    for name, text in pins.items():
        assert set(re.findall(r"openrlhf(?:\[vllm\])?==([\d.]+)", text)) == {OPENRLHF_VERSION}, name


def test_dry_run_writes_prompts_and_command(tmp_path, tiny_model_dir):
    cfg = from_dict(config(tmp_path, tiny_model_dir))
    result = hand_off(cfg, show_progress=False)
    lines = (tmp_path / "ppo" / "openrlhf" / "prompts.jsonl").read_text().splitlines()
    assert result["prompts"] == len(lines) > 0 and set(json.loads(lines[0])) == {"input", "id"}
    assert "openrlhf.cli.train_ppo_ray" in (tmp_path / "ppo" / "openrlhf" / "command.sh").read_text()
    assert result["remote_rm_url"] == f"http://127.0.0.1:{cfg.serve.http_port}/reward/get_reward"
    assert "returncode" not in result


def test_cli_dry_run(tmp_path, tiny_model_dir):
    import yaml
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, tiny_model_dir)))
    proc = run_cli(["ppo", "--config", str(path)], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "openrlhf.cli.train_ppo_ray" in proc.stdout and "--reward.remote_url" in proc.stdout
