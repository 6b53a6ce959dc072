"""`arena-ray ppo`: RL on a policy whose rollouts come from its own Ray Serve (vLLM) deployment.

setup → run → cleanup. Per step: rollouts from the policy deployment, at the learner's weight version (a
replica behind it loads the published weights first, serving/weights.py) → rewards (reward model or judge
rubric) → group advantages (grpo / rloo / reinforce) → clipped policy-gradient step with a KL penalty to the
frozen reference (ppo_learner.py) → the new weights are published and the next rollouts ask for them.
Layout under ppo.dir: rollouts/step-<s>.jsonl (resumable requests), steps.jsonl (one row per step),
checkpoint/ (+ checkpoint.json), model/ (final, safetensors), registry.jsonl, summary.json.
`backend: openrlhf` hands the job to OpenRLHF's Ray PPO instead (workflows/openrlhf.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from arena_ray.data.ingest import load_instructions
from arena_ray.errors import ConfigError, InputError
from arena_ray.records import ChatMessage, GenerationRequest, Instruction, SamplingSpec
from arena_ray.records.outputs import output_dir
from arena_ray.records.rl import Rollout
from arena_ray.records.tables import json_text
from arena_ray.serving import weight_plan
from arena_ray.serving.batch import BatchItem, read_lines, run_batch
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.cluster import ray_session
from arena_ray.serving.deployments import served
from arena_ray.settings import Config, dump
from arena_ray.train.registry import Registry
from arena_ray.train.rl_math import advantages

log = logging.getLogger(__name__)


def run_ppo(config: Config, show_progress: bool = True) -> dict:
    # --- setup: every check that needs no cluster
    if config.ppo is None:
        raise ConfigError("this config has no 'ppo' section (see configs/ppo.yaml)")
    ppo = config.ppo
    if ppo.backend == "openrlhf":
        from arena_ray.workflows.openrlhf import hand_off

        return hand_off(config, show_progress)
    root = output_dir(ppo.dir, name="ppo.dir")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(dump(config))
    prompts = load_instructions(ppo.prompts.path, ppo.prompts.format, ppo.prompts.offset, ppo.prompts.limit)
    template = judge_template(config)
    start = resume_point(root)
    policy_app = f"{ppo.policy}-policy"
    policy_cfg = config.models[ppo.policy]
    unfit = weight_plan.problems(ppo.weight_sync, ppo.use_gpu, ppo.policy, policy_cfg)
    if unfit:
        raise ConfigError("; ".join(unfit))
    # nccl / ipc: the policy's vLLM gets a weight-transfer receiver (serving/weight_transfer.py)
    models = {policy_app: weight_plan.serving_config(policy_cfg, ppo.weight_sync)}
    if ppo.reward.source != "rm":
        models[config.judge.model] = config.models[config.judge.model]
    # --- run
    with ray_session(config.ray), served(models, config.serve, exclusive=[policy_app]) as handles:
        import ray

        from arena_ray.serving.weight_store import open_store
        from arena_ray.train.placement import check_cluster, cpu_worker_env
        from arena_ray.train.ppo_learner import PolicyLearner

        gpus = weight_plan.learner_gpus(ppo.weight_sync, ppo.use_gpu, policy_cfg)
        if ppo.use_gpu:
            check_cluster({"GPU": gpus}, f"ppo.use_gpu: true (the learner takes {gpus:g} GPU)")
        store = open_store(policy_app)
        # A CPU learner on a GPU host must not see the GPU (Ray leaves CUDA_VISIBLE_DEVICES alone at 0 GPUs).
        learner = ray.remote(PolicyLearner).options(
            num_cpus=ppo.learner_cpus, num_gpus=gpus, scheduling_strategy=beside_policy(ray, store, ppo),
            runtime_env=None if ppo.use_gpu else {"env_vars": cpu_worker_env()},
        ).remote(policy_cfg.path, ppo.model_dump(mode="json"), ppo.use_gpu,
                 push_to={"model": policy_app, "replicas": policy_cfg.replicas,
                          "tensor_parallel_size": policy_cfg.vllm.tensor_parallel_size})
        if start:
            ray.get(learner.restore.remote(str(root / "checkpoint"), start))
            publish(ray, learner, store)
        policy = ServeModelClient(handles[policy_app], config.models[ppo.policy].max_ongoing_requests)
        reward = reward_source(config, handles, template)
        for step in range(start + 1, ppo.steps + 1):
            batch = step_prompts(prompts, step, ppo.prompts_per_step)
            rollouts = asyncio.run(collect(policy, batch, step, ppo, root, show_progress))
            scored = [r for r in score(reward, rollouts) if r.reward is not None]
            stats = ray.get(learner.step.remote(step, with_advantages(scored, ppo.advantage)))
            publish(ray, learner, store)
            record(root, step, stats, rollouts, scored, show_progress)
            if step % ppo.save_every == 0 or step == ppo.steps:
                checkpoint(ray, learner, root, step)
        served_version = asyncio.run(probe(policy, prompts[0], ppo.steps))
        final = ray.get(learner.save.remote(str(root / "model")))
    # --- results
    entry = Registry(root).register(f"{ppo.policy}@ppo{ppo.steps}", Path(final), parent=ppo.policy, stage="ppo",
                                    iteration=ppo.steps)
    summary = {"steps": read_lines(root / "steps.jsonl"), "final_version": ppo.steps, "served_version": served_version,
               "model": final, "digest": entry.digest}
    (root / "summary.json").write_text(json_text(summary, indent=2) + "\n")
    return summary


def resume_point(root: Path) -> int:
    """The last checkpointed step (0: none). Rows and rollouts of later steps were made by weights that are
    lost with the crash: they are dropped so those steps run again."""
    meta = root / "checkpoint.json"
    step = json.loads(meta.read_text())["step"] if meta.exists() else 0
    rows = [r for r in read_lines(root / "steps.jsonl") if r["step"] <= step]
    (root / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for path in (root / "rollouts").glob("step-*.jsonl"):
        if int(path.stem.split("-")[1]) > step + 1:
            path.unlink()
    return step


def step_prompts(prompts: list[Instruction], step: int, per_step: int) -> list[Instruction]:
    if not prompts:
        raise InputError("ppo.prompts: no prompts")
    first = (step - 1) * per_step
    return [prompts[(first + i) % len(prompts)] for i in range(per_step)]


def judge_template(config: Config):
    """The judge's template for this reward (checked before anything starts), or None for a reward model."""
    from arena_ray.judging.prompts import load_rubric_template, load_template

    source = config.ppo.reward.source
    return load_rubric_template(config.ppo.reward.judge_prompt) if source == "judge" else \
        load_template(config.judge.prompt) if source == "pairwise" else None


def reward_source(config: Config, handles: dict, template):
    ppo = config.ppo
    if ppo.reward.source in ("judge", "pairwise"):
        from arena_ray.data.answers import load_answers
        from arena_ray.train.rewards import JudgeReward, PairwiseJudgeReward

        judge = config.models[config.judge.model]
        client = ServeModelClient(handles[config.judge.model], judge.replicas * judge.max_ongoing_requests)
        if ppo.reward.source == "judge":
            return JudgeReward(client, template, ppo.reward, ppo.request_timeout_s)
        return PairwiseJudgeReward(client, template, load_answers(ppo.reward.reference_answers), ppo.reward,
                                   config.judge.max_answer_chars, ppo.request_timeout_s)
    import ray

    from arena_ray.train.rewards import RewardModelScorer
    return ray.remote(RewardModelScorer).options(num_cpus=1).remote(ppo.reward.rm_path, ppo.reward.rm_max_length)


def score(reward, rollouts: list[Rollout]) -> list[Rollout]:
    import ray

    if hasattr(reward, "score") and asyncio.iscoroutinefunction(reward.score):
        values = asyncio.run(reward.score(rollouts))
    else:
        values = ray.get(reward.score.remote([(r.prompt, r.text) for r in rollouts]))
    return [replace(r, reward=v) for r, v in zip(rollouts, values)]


def with_advantages(rollouts: list[Rollout], estimator: str) -> list[Rollout]:
    adv = advantages([r.reward for r in rollouts], [r.prompt_id for r in rollouts], estimator)
    return [replace(r, advantage=a) for r, a in zip(rollouts, adv)]


async def collect(policy, prompts: list[Instruction], step: int, ppo, root: Path, show: bool) -> list[Rollout]:
    """N samples per prompt from the policy deployment at weight version step-1 (token ids + logprobs)."""
    version = step - 1
    items = [BatchItem(f"{p.instruction_id}#{k}", GenerationRequest(
        f"rollout-{step}-{p.instruction_id}-{k}", (ChatMessage("user", p.text),),
        SamplingSpec(max_tokens=ppo.max_new_tokens, temperature=ppo.temperature, top_p=ppo.top_p,
                     seed=ppo.seed + 1000 * step + k, return_tokens=True), weight_version=version))
        for p in prompts for k in range(ppo.samples_per_prompt)]
    rows = await run_batch(policy, items, root / "rollouts" / f"step-{step}.jsonl", max_in_flight=ppo.max_in_flight,
                           timeout_s=ppo.request_timeout_s, max_attempts=ppo.max_attempts,
                           desc=f"rollouts step {step}", show=show)
    text = {p.instruction_id: p.text for p in prompts}
    out = []
    for key, row in rows.items():
        pid, k = key.rsplit("#", 1)
        out.append(Rollout(pid, int(k), text[pid], row.text, row.prompt_token_ids or (), row.token_ids or (),
                           row.token_logprobs or None, row.weight_version if row.weight_version is not None else -1))
    return sorted(out, key=lambda r: (r.prompt_id, r.sample))


def publish(ray, learner, store) -> None:
    """object_store: the bytes go through the store; nccl / ipc: the learner pushes them into every replica
    first and the store gets a receipt (a replica asked for the version before it has it waits for its push)."""
    version, refs = ray.get(learner.publish.remote())
    ray.get(store.publish.remote(version, refs))


def beside_policy(ray, store, ppo):
    """ipc: the learner on the policy replica's node (Ray then gives it the rest of that replica's GPU)."""
    if ppo.weight_sync != "ipc":
        return None
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    members = ray.get(store.roster.remote(1, weight_plan.ROSTER_TIMEOUT_S))
    return NodeAffinitySchedulingStrategy(members[0]["node_id"], soft=False)


def checkpoint(ray, learner, root: Path, step: int) -> None:
    tmp = root / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    ray.get(learner.save.remote(str(tmp)))
    shutil.rmtree(root / "checkpoint", ignore_errors=True)
    tmp.rename(root / "checkpoint")
    (root / "checkpoint.json").write_text(json.dumps({"step": step}) + "\n")


def record(root: Path, step: int, stats, rollouts: list[Rollout], scored: list[Rollout], show: bool) -> None:
    rewards = [r.reward for r in scored]
    row = {**asdict(stats), "rollouts_collected": len(rollouts), "unrewarded": len(rollouts) - len(scored),
           "reward_mean": round(sum(rewards) / len(rewards), 4) if rewards else None,
           "versions_seen": sorted({r.weight_version for r in rollouts})}
    with (root / "steps.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    from arena_ray.arena.metrics import ArenaMetrics
    ArenaMetrics(root.name).set("arena_weight_version", stats.version, role="ppo-policy")
    if show:
        print(f"step {step}: reward {row['reward_mean']} loss {stats.loss:.4f} kl {stats.kl:.5f} "
              f"clip {stats.clip_fraction:.3f} stale {stats.stale_dropped} → weights v{stats.version}")


async def probe(policy, prompt: Instruction, version: int) -> int:
    """One request that needs the final weights: the version the replica answers with."""
    c = await policy.generate(GenerationRequest("probe", (ChatMessage("user", prompt.text),),
                                                SamplingSpec(max_tokens=4), weight_version=version))
    return c.weight_version


