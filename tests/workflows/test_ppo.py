"""`arena-ray ppo` on a real local Ray + Serve with a tiny random policy on vLLM: rollouts come from the
serving deployment, each stamped with the weight version that produced it; after every step the new weights
are loaded into the replica in place (its logprobs then match the learner's, not the base model's); the run
resumes from its checkpoint. Also the judge as reward, in-process and behind OpenRLHF's remote-RM protocol."""
from __future__ import annotations

import asyncio
import json
import math
import urllib.request

import pytest

from arena_ray.judging.prompts import load_rubric_template
from arena_ray.records.rl import Rollout
from arena_ray.settings import from_dict
from arena_ray.settings.ppo import RewardConfig
from arena_ray.testing.fakes import RubricLengthJudge
from arena_ray.train.registry import Registry, digest
from arena_ray.train.rewards import JudgeReward
from arena_ray.workflows.ppo import run_ppo
from tests.conftest import SHARED_DATA
from tests.helpers import tiny_config_dict


def ppo_config(tmp_path, tiny_model_dir):
    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["ppo"] = {"dir": str(tmp_path / "ppo"), "policy": "tiny", "steps": 2, "prompts_per_step": 2,
                   "samples_per_prompt": 4, "max_new_tokens": 8, "learning_rate": 3e-3, "kl_coef": 0.01,
                   "prompts": {"path": str(SHARED_DATA / "instructions" / "alpaca_tiny.json"), "limit": 8},
                   "reward": {"source": "rm", "rm_path": str(tiny_model_dir), "rm_max_length": 256}}
    return from_dict(data)


def base_logprobs(model_dir, row) -> list[float]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([row["prompt_token_ids"] + row["token_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
    return logp[len(row["prompt_token_ids"]) - 1:].tolist()


@pytest.mark.slow
def test_ppo_rollouts_from_serving_with_weight_push(local_ray, tmp_path, tiny_model_dir):
    config = ppo_config(tmp_path, tiny_model_dir)
    summary = run_ppo(config, show_progress=False)
    root = tmp_path / "ppo"
    steps = summary["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    for s in steps:
        assert s["versions_seen"] == [s["step"] - 1] and s["stale_dropped"] == 0 and s["rollouts"] == 8
        assert s["reward_mean"] is not None and s["grad_norm"] > 0
        assert s["sampler_logprob_gap"] < 1e-3   # vLLM sampled with the weights the learner holds (fp32 both)
    assert summary["served_version"] == 2
    # Step 2's rollouts were sampled by the pushed version-1 weights, not by the base checkpoint's.
    rows = [json.loads(line) for line in (root / "rollouts" / "step-2.jsonl").read_text().splitlines()]
    gaps = [abs(a - b) for r in rows for a, b in zip(base_logprobs(tiny_model_dir, r), r["token_logprobs"])
            if math.isfinite(b)]
    assert sum(gaps) / len(gaps) > 5 * steps[1]["sampler_logprob_gap"]
    entry = Registry(root).get("tiny@ppo2")
    assert entry.digest == digest(root / "model") != digest(tiny_model_dir)
    # Re-run: nothing is trained again; the restored weights are pushed into the new replica.
    again = run_ppo(config, show_progress=False)
    assert again["steps"] == steps and again["served_version"] == 2


def rollout(text: str) -> Rollout:
    return Rollout("p", 0, "Say something.", text, (), (), None, 0)


def test_judge_reward_retries_unparsable_judgments():
    judge = RubricLengthJudge(garbage_first=True)
    cfg = RewardConfig(source="judge", judge_max_attempts=2)
    scorer = JudgeReward(judge, load_rubric_template("rubric-additive-v1"), cfg, timeout_s=5)
    assert asyncio.run(scorer.score([rollout("one two three")])) == [pytest.approx(0.6)]
    assert judge.calls == 2
    never = JudgeReward(RubricLengthJudge(garbage_first=True), load_rubric_template("rubric-additive-v1"),
                        RewardConfig(source="judge", judge_max_attempts=1), timeout_s=5)
    assert asyncio.run(never.score([rollout("x")])) == [None]   # unrewarded, left out of the step


@pytest.mark.slow
def test_reward_endpoint_speaks_openrlhf_protocol(local_ray, tmp_path, tiny_model_dir):
    from arena_ray.serving.deployments import deploy, served, undeploy
    from arena_ray.train.reward_endpoint import build_reward_app

    data = tiny_config_dict(tmp_path / "unused", tiny_model_dir)
    data["ppo"] = {"policy": "tiny", "reward": {"source": "judge"}}
    config = from_dict(data)
    # A fake rubric judge under its own name, so the session's real "tiny" application stays as it is.
    with served({"rubric-judge": config.models["tiny"]}, config.serve, factories={"rubric-judge": RubricLengthJudge}) \
            as handles:
        deploy({"reward": build_reward_app(config, handles["rubric-judge"])}, 120)
        try:
            prompt = "<|im_start|>user\nName two colours.<|im_end|>\n<|im_start|>assistant\n"
            body = json.dumps({"query": [prompt + "Red and blue.", prompt + "Red"], "prompts": [prompt, prompt],
                               "labels": ["", ""]}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{local_ray.serve_port}/reward/get_reward", body,
                                         {"Content-Type": "application/json"})
            out = json.loads(urllib.request.urlopen(req, timeout=60).read())
            assert out["rewards"] == [0.6, 0.2] and out["scores"] == out["rewards"]
        finally:
            undeploy(["reward"])
