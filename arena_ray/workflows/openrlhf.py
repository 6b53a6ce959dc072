"""`arena-ray ppo` with `ppo.backend: openrlhf`: write OpenRLHF's prompt file and command (train/openrlhf.py), serve
the judge behind the remote-reward endpoint when the reward is the judge, and run OpenRLHF's Ray PPO."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from arena_ray.errors import TrainingError
from arena_ray.serving.cluster import ray_session
from arena_ray.settings import Config
from arena_ray.train.openrlhf import build_command, reward_url, write_prompts
from arena_ray.train.reward_endpoint import serve_reward


def hand_off(config: Config, show_progress: bool = True) -> dict:
    root = Path(config.ppo.dir) / "openrlhf"
    prompts = root / "prompts.jsonl"
    count = write_prompts(config, prompts)
    serve_judge = config.ppo.reward.source == "judge" and not config.ppo.openrlhf.remote_rm_url
    url = reward_url(config) if config.ppo.reward.source == "judge" else None
    cmd = build_command(config, prompts.resolve(), (root / "model").resolve(), url)
    (root / "command.sh").write_text("#!/bin/sh\n" + shlex.join(cmd) + "\n")
    result = {"backend": "openrlhf", "prompts": count, "command": cmd, "remote_rm_url": url}
    if show_progress:
        print(shlex.join(cmd))
    if config.ppo.openrlhf.dry_run:
        return result
    if serve_judge:
        with ray_session(config.ray), serve_reward(config):
            result["returncode"] = subprocess.run(cmd, check=False).returncode
    else:
        result["returncode"] = subprocess.run(cmd, check=False).returncode
    if result["returncode"]:
        raise TrainingError(f"OpenRLHF exited with {result['returncode']} (command in {root / 'command.sh'})")
    return result
