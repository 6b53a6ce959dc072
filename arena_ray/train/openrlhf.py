"""`ppo.backend: openrlhf`: the command line and prompt file of OpenRLHF's Ray PPO on a GPU cluster.

OpenRLHF runs actor / reference / (critic) under DeepSpeed and vLLM engines for rollouts, and broadcasts
weights into the engines over NCCL after each update. This module writes the prompts this project prepared
as OpenRLHF's `{"input": ...}` JSONL, builds the `openrlhf.cli.train_ppo_ray` command line from the `ppo:`
section, and for `reward.source: judge` serves the judge behind OpenRLHF's remote-reward protocol
(`--remote_rm_url`, train/reward_endpoint.py) for the duration of the run.
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

# Our advantage names → OpenRLHF's --advantage_estimator choices.
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
    ppo, o = config.ppo, config.ppo.openrlhf
    policy = config.models[ppo.policy]
    cmd = [o.python or sys.executable, "-m", "openrlhf.cli.train_ppo_ray",
           "--ref_num_nodes", str(o.ref_num_nodes), "--ref_num_gpus_per_node", str(o.ref_num_gpus_per_node),
           "--actor_num_nodes", str(o.actor_num_nodes), "--actor_num_gpus_per_node", str(o.actor_num_gpus_per_node),
           "--vllm_num_engines", str(o.vllm_num_engines),
           "--vllm_tensor_parallel_size", str(o.vllm_tensor_parallel_size),
           "--vllm_gpu_memory_utilization", str(o.vllm_gpu_memory_utilization),
           "--vllm_sync_backend", "nccl",
           "--pretrain", str(Path(policy.path).resolve()),
           "--save_path", str(save_path),
           "--micro_train_batch_size", str(o.micro_train_batch_size), "--train_batch_size", str(o.train_batch_size),
           "--micro_rollout_batch_size", str(o.micro_rollout_batch_size),
           "--rollout_batch_size", str(ppo.prompts_per_step),
           "--n_samples_per_prompt", str(ppo.samples_per_prompt),
           "--num_episodes", "1", "--max_epochs", str(ppo.ppo_epochs),
           "--max_samples", str(ppo.steps * ppo.prompts_per_step),
           "--prompt_max_len", str(o.prompt_max_len), "--generate_max_len", str(ppo.max_new_tokens),
           "--temperature", str(ppo.temperature), "--top_p", str(ppo.top_p),
           "--advantage_estimator", ESTIMATORS[ppo.advantage],
           "--zero_stage", str(o.zero_stage),
           "--actor_learning_rate", str(ppo.learning_rate),
           "--init_kl_coef", str(ppo.kl_coef), "--use_kl_loss", "--kl_estimator", "k3",
           "--eps_clip", str(ppo.clip_eps), "--max_norm", str(ppo.max_grad_norm), "--seed", str(ppo.seed),
           "--prompt_data", str(prompt_data), "--input_key", "input"]
    if policy.prompt_format == "chat":
        cmd.append("--apply_chat_template")
    if ppo.reward.source == "rm":
        cmd += ["--reward_pretrain", str(Path(ppo.reward.rm_path).resolve()), "--normalize_reward"]
    else:
        if not remote_rm_url:
            raise ConfigError("ppo.reward.source 'judge' needs a remote reward URL for OpenRLHF")
        cmd += ["--remote_rm_url", remote_rm_url]
    for flag, on in (("--colocate_all_models", o.colocate_all_models), ("--bf16", o.bf16),
                     ("--gradient_checkpointing", o.gradient_checkpointing), ("--packing_samples", o.packing_samples)):
        if on:
            cmd.append(flag)
    return cmd + list(o.extra_args)


def reward_url(config: Config) -> str:
    return config.ppo.openrlhf.remote_rm_url or \
        f"http://{config.serve.http_host}:{config.serve.http_port}/reward/get_reward"
