"""The judge as a remote reward model in OpenRLHF's protocol: POST {"query": [prompt+response, ...],
"prompts": [prompt, ...], "labels": [...]} → {"rewards": [...], "scores": [...], "extra_logs": {...}}.

Each response (the query minus its prompt) is scored by the judge deployment with the single-answer rubric
(0-5, divided by 5); an unparsable judgment after its attempts scores `failed_reward` and is counted.
"""
from __future__ import annotations

import contextlib

from ray import serve

from arena_ray.judging.prompts import load_rubric_template
from arena_ray.records.rl import Rollout
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.deployments import deploy, served, undeploy
from arena_ray.serving.openai_api import BadRequest, error, read_body
from arena_ray.settings.ppo import RewardConfig
from arena_ray.train.rewards import JudgeReward


@serve.deployment(name="reward")
class RewardEndpoint:
    def __init__(self, judge_handle, reward_cfg: dict, timeout_s: float, failed_reward: float = 0.0):
        cfg = RewardConfig.model_validate(reward_cfg)
        self.scorer = JudgeReward(ServeModelClient(judge_handle, 64), load_rubric_template(cfg.judge_prompt), cfg,
                                  timeout_s)
        self.failed_reward = failed_reward

    async def __call__(self, http_request):
        from starlette.responses import JSONResponse

        try:
            queries, prompts = reward_inputs(await read_body(http_request))
        except BadRequest as err:
            return JSONResponse(error(str(err), err.status), status_code=err.status)
        rollouts = [Rollout(f"q{i}", 0, _plain(p), q[len(p):] if q.startswith(p) else q, (), (), None, 0)
                    for i, (q, p) in enumerate(zip(queries, prompts))]
        scores = await self.scorer.score(rollouts)
        rewards = [self.failed_reward if s is None else s for s in scores]
        return {"rewards": rewards, "scores": rewards,
                "extra_logs": {"judge_failures": [float(s is None) for s in scores]}}


MAX_QUERIES, MAX_QUERY_CHARS = 4096, 256_000   # one rollout batch; a sequence far beyond any model's context


def reward_inputs(body: dict) -> tuple[list[str], list[str]]:
    """OpenRLHF's `query` (prompt + response) and `prompts` lists, bounded and checked."""
    queries = body.get("query")
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) for q in queries):
        raise BadRequest("'query' must be a non-empty list of strings")
    if len(queries) > MAX_QUERIES or max(map(len, queries)) > MAX_QUERY_CHARS:
        raise BadRequest(f"at most {MAX_QUERIES} queries of {MAX_QUERY_CHARS} characters each", 413)
    prompts = body.get("prompts") or [""] * len(queries)
    if not isinstance(prompts, list) or len(prompts) != len(queries) or not all(isinstance(p, str) for p in prompts):
        raise BadRequest("'prompts' must be a list of strings, one per query")
    return queries, prompts


def _plain(prompt: str) -> str:
    """OpenRLHF sends the chat-templated prompt; the rubric wants the user's words (the last user turn)."""
    for marker in ("<|im_start|>user\n", "[INST]", "<start_of_turn>user\n", "<|user|>\n"):
        if marker in prompt:
            prompt = prompt.rsplit(marker, 1)[1]
    for end in ("<|im_end|>", "[/INST]", "<end_of_turn>", "<|end|>"):
        prompt = prompt.split(end, 1)[0]
    return prompt.strip()


def build_reward_app(config, judge):
    """The reward endpoint bound to `judge`: a served judge's handle, or a bound judge application."""
    ppo = config.ppo
    return RewardEndpoint.bind(judge, ppo.reward.model_dump(mode="json"), ppo.request_timeout_s)


@contextlib.contextmanager
def serve_reward(config):
    """The judge (served, or reused when already running) and the reward endpoint (route /reward) for the
    duration of the block. The caller holds the Ray session."""
    judge = config.judge.model
    with served({judge: config.models[judge]}, config.serve) as handles:
        deploy({"reward": build_reward_app(config, handles[judge])}, config.serve.deploy_timeout_s)
        try:
            yield
        finally:
            undeploy(["reward"])
