"""`ppo.backend: openrlhf`: the command line and prompt file of OpenRLHF's Ray PPO on a GPU cluster.

OpenRLHF runs actor / reference / (critic) under DeepSpeed and vLLM engines for rollouts, and broadcasts
weights into the engines over NCCL after each update. This module writes the prompts this project prepared
as OpenRLHF's `{"input": ...}` JSONL, builds the `openrlhf.cli.train_ppo_ray` command line from the `ppo:`
section, and for `reward.source: judge` serves the judge behind OpenRLHF's remote-reward protocol
(`--reward.remote_url`, train/reward_endpoint.py) for the duration of the run.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

from arena_ray.data.ingest import load_instructions
from arena_ray.errors import ConfigError
from arena_ray.settings import Config

log = logging.getLogger(__name__)

# The OpenRLHF release whose `train_ppo_ray` flags build_command writes (its dotted names arrived in 0.11);
# deploy/Dockerfile and the `openrlhf` extra pin the same release, and a test parses the command with the
# parser of this release's own wheel.
OPENRLHF_VERSION = "0.11.2"

# Our advantage names → OpenRLHF's --algo.advantage.estimator choices (all critic-free).
ESTIMATORS = {"grpo": "group_norm", "rloo": "rloo", "reinforce": "reinforce"}


def write_prompts(config: Config, out: Path) -> int:
    p = config.ppo.prompts
    prompts = load_instructions(p.path, p.format, p.offset, p.limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as fh:
        for inst in prompts:
            fh.write(json.dumps({"input": inst.text, "id": inst.instruction_id}) + "\n")
    return len(prompts)


def build_command(config: Config, prompt_data: Path, save_path: Path, remote_rm_url: Optional[str]) -> list[str]:
    """`python -m openrlhf.cli.train_ppo_ray ...` for the `ppo:` section: every setting with an OpenRLHF
    counterpart is mapped (the native learner's own knobs are refused at config load, settings/ppo.py)."""
    ppo, o = config.ppo, config.ppo.openrlhf
    policy = config.models[ppo.policy]
    cmd = [o.python or sys.executable, "-m", "openrlhf.cli.train_ppo_ray"]
    cmd += _placement(config) + _rollout(config, prompt_data) + _learner(config) + _reward(config, remote_rm_url)
    cmd += ["--actor.model_name_or_path", str(Path(policy.path).resolve()),
            "--ckpt.output_dir", str(save_path), "--ckpt.path", str(save_path.parent / "checkpoints"),
            "--ckpt.save_steps", str(ppo.save_every), "--ckpt.load_enable"]  # a re-run resumes from the last one
    return cmd + list(o.extra_args)


def _placement(config: Config) -> list[str]:
    o = config.ppo.openrlhf
    flags = ["--actor.num_nodes", str(o.actor_num_nodes), "--actor.num_gpus_per_node", str(o.actor_num_gpus_per_node),
             "--ref.num_nodes", str(o.ref_num_nodes), "--ref.num_gpus_per_node", str(o.ref_num_gpus_per_node),
             "--vllm.num_engines", str(o.vllm_num_engines),
             "--vllm.tensor_parallel_size", str(o.vllm_tensor_parallel_size),
             "--vllm.gpu_memory_utilization", str(o.vllm_gpu_memory_utilization),
             "--vllm.sync_backend", o.vllm_sync_backend, "--ds.zero_stage", str(o.zero_stage),
             "--ds.param_dtype", "bf16" if o.bf16 else "fp16"]
    for flag, on in (("--train.colocate_all", o.colocate_all_models), ("--vllm.enable_sleep", o.vllm_enable_sleep),
                     ("--actor.gradient_checkpointing_enable", o.gradient_checkpointing),
                     ("--ds.packing_samples", o.packing_samples)):
        if on:
            flags.append(flag)
    return flags


def _rollout(config: Config, prompt_data: Path) -> list[str]:
    ppo, o = config.ppo, config.ppo.openrlhf
    flags = ["--data.prompt_dataset", str(prompt_data), "--data.input_key", "input",
             "--data.max_samples", str(ppo.steps * ppo.prompts_per_step),
             "--data.max_len", str(o.prompt_max_len + ppo.max_new_tokens),
             "--rollout.batch_size", str(ppo.prompts_per_step),
             "--rollout.micro_batch_size", str(o.micro_rollout_batch_size),
             "--rollout.n_samples_per_prompt", str(ppo.samples_per_prompt),
             "--rollout.max_new_tokens", str(ppo.max_new_tokens),
             "--rollout.temperature", str(ppo.temperature), "--rollout.top_p", str(ppo.top_p)]
    if config.models[ppo.policy].prompt_format == "chat":
        flags.append("--data.apply_chat_template")
    return flags


def _learner(config: Config) -> list[str]:
    ppo, o = config.ppo, config.ppo.openrlhf
    return ["--train.batch_size", str(o.train_batch_size), "--train.micro_batch_size", str(o.micro_train_batch_size),
            "--train.num_episodes", "1", "--train.max_epochs", str(ppo.ppo_epochs), "--train.seed", str(ppo.seed),
            "--algo.advantage.estimator", ESTIMATORS[ppo.advantage],
            "--algo.kl.init_coef", str(ppo.kl_coef), "--algo.kl.use_loss", "--algo.kl.estimator", "k3",
            "--actor.adam.lr", str(ppo.learning_rate), "--actor.adam.weight_decay", str(ppo.weight_decay),
            "--actor.eps_clip", str(ppo.clip_eps), "--actor.max_norm", str(ppo.max_grad_norm)]


def _reward(config: Config, remote_rm_url: Optional[str]) -> list[str]:
    ppo, o = config.ppo, config.ppo.openrlhf
    if ppo.reward.source == "rm":
        return ["--reward.model_name_or_path", str(Path(ppo.reward.rm_path).resolve()), "--reward.normalize_enable",
                "--reward.num_nodes", str(o.reward_num_nodes),
                "--reward.num_gpus_per_node", str(o.reward_num_gpus_per_node)]
    if not remote_rm_url:
        raise ConfigError("ppo.reward.source 'judge' needs a remote reward URL for OpenRLHF")
    return ["--reward.remote_url", remote_rm_url]


def reward_url(config: Config) -> str:
    return config.ppo.openrlhf.remote_rm_url or \
        f"http://{config.serve.http_host}:{config.serve.http_port}/reward/get_reward"
