"""The flywheel's ppo stage: `arena-ray ppo`'s learner on the stage's fresh shard (Arena Learning's last training
step of an iteration). Rollouts come from the input version's deployment; the reward is the judge comparing each
sample with the strongest competitor's answer from the stage's battles (both orders), or the iteration's reward
model; new weights reach the serving replica after every step; the result is registered with stage `ppo`."""
from __future__ import annotations

from pathlib import Path

from arena_ray.arena.metrics import ArenaMetrics
from arena_ray.data.leaderboards import read_board
from arena_ray.settings import Config, from_dict
from arena_ray.train.registry import Registry, version
from arena_ray.workflows.flywheel.plan import Stage
from arena_ray.workflows.flywheel.stages import registered, version_model
from arena_ray.workflows.kit import once, record_answers
from arena_ray.workflows.ppo import run_ppo


def strongest_competitor(root: Path, config: Config, evaluated: str) -> str:
    """The competitor rated highest on the offline test set when `evaluated` was last rated (ties: config
    order): the paper's PPO reward compares samples with the strongest model's answers."""
    competitors = config.flywheel.competitors
    board = root / "eval" / evaluated / "leaderboard.json"
    if not board.exists():
        return competitors[0]
    models = read_board(board)["models"]
    rated = [(models.get(c, {}).get("rating"), -k, c) for k, c in enumerate(competitors)]
    return max(rated, key=lambda t: (t[0] is not None, t[0] or 0.0, t[1]))[2]


def run(config: Config, root: Path, registry: Registry, stage: Stage, battle_dir: Path, show: bool) -> dict:
    """`arena-ray ppo`'s learner on the stage's shard: rollouts from the input version's deployment, rewards from
    the judge against the strongest competitor's answers in the stage's battles (or from the iteration's reward
    model), new weights pushed into the serving replica after every step; the result is registered."""
    fw = config.flywheel
    stage_dir = root / stage.name
    reward = fw.ppo.reward.model_dump(mode="json")
    if reward["source"] == "rm":
        reward["rm_path"] = registered(registry, f"{fw.target}-rm@{stage.iteration}").path
    elif reward["source"] == "pairwise":
        reference = strongest_competitor(root, config, version(fw.target, stage.iteration - 1))
        reward["reference_answers"] = str(stage_dir / "reference" / f"{reference}.jsonl")
    data = config.model_dump(mode="json", exclude={"flywheel", "self_reward", "ppo"})
    data["models"][stage.battle_model] = version_model(config, registry, stage.battle_model)
    data["ppo"] = {**fw.ppo.model_dump(mode="json"), "reward": reward, "dir": str(stage_dir / "ppo"),
                   "policy": stage.battle_model,
                   # the prompts the stage battled on (its shard, focused or capped): each has its reference answer
                   "prompts": {"path": str(battle_dir / "instructions.parquet")}}
    cfg = from_dict(data, source=f"the ppo stage of {stage_dir}")

    def work() -> dict:
        if reward["source"] == "pairwise":  # once, with the stage: a finished stage reads nothing again
            record_answers(battle_dir, reference, Path(reward["reference_answers"]))
        summary = run_ppo(cfg, show_progress=show)
        steps = summary["steps"]
        return {"path": summary["model"], "metrics": {
            "steps": len(steps), "loss_first": steps[0]["loss"], "loss_last": steps[-1]["loss"],
            "reward_first": steps[0]["reward_mean"], "reward_last": steps[-1]["reward_mean"],
            "kl_last": steps[-1]["kl"], "reward": reward["source"]}}
    result = once(stage_dir / "train", work)
    registry.register(stage.output, Path(result["path"]), parent=stage.battle_model, stage="ppo",
                      iteration=stage.iteration, metrics=result["metrics"])
    ArenaMetrics(root.name).set("arena_weight_version", registry.get(stage.output).version, role=stage.output)
    return result

