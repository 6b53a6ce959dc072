"""Kill the policy's serving replica (ray.kill) in the middle of `arena-ray ppo`: Serve starts a replacement
with the checkpoint's base weights; the next rollouts ask for the learner's weight version, so the new
replica loads the published weights before answering — no rollout is lost or stale, and its logprobs match
the learner's."""
from __future__ import annotations

import threading
import time

import pytest
import ray

from arena_ray.serving.batch import read_rows
from arena_ray.settings import from_dict
from arena_ray.workflows.ppo import run_ppo
from tests.conftest import SHARED_DATA
from tests.faults.test_kill_actors import serve_replica
from tests.helpers import tiny_config_dict

pytestmark = pytest.mark.faults


def test_kill_policy_replica_between_steps(tmp_path, tiny_model_dir, fault_table):
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["ppo"] = {"dir": str(tmp_path / "ppo"), "policy": "tiny", "steps": 3, "prompts_per_step": 2,
                   "samples_per_prompt": 4, "max_new_tokens": 8, "learning_rate": 3e-3,
                   "prompts": {"path": str(SHARED_DATA / "instructions" / "alpaca_tiny.json"), "limit": 8},
                   "reward": {"source": "rm", "rm_path": str(tiny_model_dir), "rm_max_length": 256}}
    steps_file = tmp_path / "ppo" / "steps.jsonl"
    killed = threading.Event()

    def kill_after_first_step() -> None:
        while not (steps_file.exists() and steps_file.read_text().strip()):
            time.sleep(0.2)
        ray.kill(serve_replica("tiny-policy"), no_restart=True)  # Serve notices and starts a replacement
        killed.set()

    threading.Thread(target=kill_after_first_step, daemon=True).start()
    summary = run_ppo(from_dict(data), show_progress=False)
    assert killed.is_set()
    steps = summary["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3] and summary["served_version"] == 3
    for s in steps:
        assert s["versions_seen"] == [s["step"] - 1] and s["stale_dropped"] == 0 and s["rollouts"] == 8
        assert s["sampler_logprob_gap"] < 1e-3   # the replacement serves the learner's weights, not the base
    rows = [(k, r) for k in (1, 2, 3) for r in read_rows(tmp_path / "ppo" / "rollouts" / f"step-{k}.jsonl")]
    keys = [(k, r.key) for k, r in rows if r.ok]
    fault_table.append({"fault": "ray.kill policy replica (ppo)", "expected": 24, "recorded": len(keys),
                        "lost": 24 - len(keys), "duplicated": len(keys) - len(set(keys)),
                        "retried": sum(r.failed_request for _, r in rows)})
    assert len(keys) == 24
