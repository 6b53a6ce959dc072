"""`arena-ray arena`: the whole arena, setup → run → cleanup, reading top to bottom."""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import ray
from tqdm import tqdm

from arena_ray.arena import judge_eval
from arena_ray.arena.active_rounds import next_round, record_round, recorded_plan
from arena_ray.arena.coordinator import count_events, start_coordinator
from arena_ray.arena.ledger import Ledger, save_instructions
from arena_ray.arena.metrics import ArenaMetrics
from arena_ray.arena.pairing import BattlePlan, model_pairs
from arena_ray.arena.progress import Tally, remaining
from arena_ray.arena.results import disagreement_rate, finalize, outcome
from arena_ray.arena.scheduler import judge_settings, retry_policy
from arena_ray.data.ingest import load_instructions
from arena_ray.errors import ConfigError
from arena_ray.judging.prompts import PairwiseTemplate, load_template
from arena_ray.records import Instruction, Progress, Rating
from arena_ray.records.outputs import output_dir
from arena_ray.serving import preflight
from arena_ray.serving.client import ServeModelClient
from arena_ray.serving.cluster import ray_session
from arena_ray.serving.deployments import served
from arena_ray.settings import Config, dump
from arena_ray.settings.config import identity_hash

log = logging.getLogger(__name__)


@dataclass
class ArenaResult:
    run_dir: Path
    tally: Tally
    ratings: list[Rating]
    stats: dict


def check_run_dir(config: Config) -> tuple[Path, dict]:
    """The run dir's identity (run.json) against this config's: a resumed run must have the same judge and the
    same settings for every model it already battled; models may be added (only their battles run) or left
    out. A mismatch is an error naming the field. Returns the identity to record once setup succeeded."""
    run_dir = output_dir(config.run_dir, name="run_dir")
    meta_path = run_dir / "run.json"
    now = config.run_identity()
    if not meta_path.exists():
        return run_dir, now
    try:
        before = json.loads(meta_path.read_text())
        known = before["models"], before["judge"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"{meta_path} is not the record of an arena run of this version (set run_dir to a new "
                          f"directory)") from None
    changes = _differences("judge", known[1], now["judge"])
    for name in sorted(set(known[0]) & set(now["models"])):
        changes += _differences(f"models.{name}", known[0][name], now["models"][name])
    if changes:
        raise ConfigError(f"{run_dir} holds an arena run with other settings ({'; '.join(changes[:4])}); "
                          f"answers and verdicts would mix: set run_dir to a new directory, or pass --fresh to "
                          f"start over (the old run is kept beside it as {run_dir.name}.<date-time>)")
    added = sorted(set(now["models"]) - set(known[0]))
    if added:
        log.warning("%s: adding %s to a finished run; only their battles are fought", run_dir, ", ".join(added))
    return run_dir, {"judge": now["judge"], "models": {**known[0], **now["models"]}}


def set_aside(run_dir: Path) -> Optional[Path]:
    """`--fresh`: move a run directory that holds anything to <name>.<date-time> beside it (nothing is lost)."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return None
    dest = run_dir.with_name(f"{run_dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.rename(dest)
    log.warning("--fresh: the previous run in %s was moved to %s", run_dir, dest)
    return dest


def _differences(where: str, before: dict, now: dict) -> list[str]:
    out = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(f"{where}.{key}", a, b)
        elif a != b:
            out.append(f"{where}.{key}: {a!r} then, {b!r} now")
    return out


def record_run_dir(run_dir: Path, config: Config, identity: dict) -> None:
    """Make the run dir valid for a later resume: only after setup succeeded (instructions, models, template)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump(config))
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps({**identity, "fingerprint": identity_hash(identity), "updated": time.time()},
                              indent=2) + "\n")
    tmp.replace(run_dir / "run.json")


def make_plan(config: Config, instructions: list[Instruction], template: PairwiseTemplate) -> BattlePlan:
    """The static plan (all pairs or the target against each, within the budget); for active pairing, the
    every-pair base its rounds choose from."""
    a = config.arena
    pairs = model_pairs(a.competitors, "all_pairs" if a.pairing == "active" else a.pairing, a.target)
    judge = f"panel:{'+'.join(config.judge.panel)}:{config.judge.panel_rule}" if config.judge.panel \
        else config.judge.model
    plan = BattlePlan(tuple(i.instruction_id for i in instructions), tuple(pairs), judge, template.version)
    return plan if a.pairing == "active" else plan.capped(a.max_battles)


def judge_clients(config: Config, handles: dict) -> dict[str, ServeModelClient]:
    """The judge, or each member of a panel, as a client."""
    return {name: ServeModelClient(handles[name], capacity(config, name)) for name in config.judges()}


def coordinator_name(run_dir: Path) -> str:
    return f"arena-coordinator:{run_dir.resolve()}"


def capacity(config: Config, name: str) -> int:
    m = config.models[name]
    return m.replicas * m.max_ongoing_requests


def watch(coordinator, show: bool) -> Progress:
    """Poll the coordinator's progress into bars until its run() returns."""
    done_ref = coordinator.run.remote()
    bars = {key: tqdm(total=0, desc=label, unit="req", position=pos, file=sys.stderr, disable=not show)
            for pos, (key, label) in enumerate((("generations", "answers"), ("games", "judge games")))}
    while True:
        ready, _ = ray.wait([done_ref], timeout=1.0)
        p: Progress = ray.get(coordinator.progress.remote())
        if show:
            judge = p.meters.get("judge")
            bars["generations"].total, bars["generations"].n = p.generations_total, p.generations_done
            bars["games"].total, bars["games"].n = p.games_total, p.games_done + p.games_failed
            answers_tok = sum(m.tokens_per_s for k, m in p.meters.items() if k != "judge")
            bars["generations"].set_postfix_str(f"{answers_tok:.1f} tok/s", refresh=True)
            bars["games"].set_postfix_str(f"{judge.tokens_per_s if judge else 0:.1f} tok/s, parse failures "
                                          f"{p.parse_failures}", refresh=True)
        if ready:
            for bar in bars.values():
                bar.close()
            return ray.get(done_ref)


def run_arena(config: Config, show_progress: bool = True, engine_factories: dict | None = None,
              between_stages: bool = False, fresh: bool = False) -> ArenaResult:
    """`between_stages`: this arena is one stage of a workflow that may keep its models served for later ones.
    `fresh`: start a new run even where run_dir holds one (set aside, not deleted)."""
    # --- setup: everything that can be checked without a cluster, first
    if config.arena is None:
        raise ConfigError("this config has no 'arena' section (see configs/local.yaml)")
    if fresh:
        set_aside(Path(config.run_dir))
    run_dir, identity = check_run_dir(config)
    instructions = load_instructions(config.instructions.path, config.instructions.format,
                                     config.instructions.offset, config.instructions.limit)
    preflight.check_models(config, instructions)
    template = load_template(config.judge.prompt)
    record_run_dir(run_dir, config, identity)
    save_instructions(run_dir, instructions)
    base = make_plan(config, instructions, template)
    plan = recorded_plan(run_dir, base) if config.arena.pairing == "active" else base
    started = time.perf_counter()
    if games_left(config, run_dir, plan) or next_battles(config, run_dir, plan, instructions):
        stats, plan = serve_and_battle(config, run_dir, instructions, base, plan, template, engine_factories or {},
                                       show_progress, between_stages)
    else:  # a finished run: nothing to serve, just (re)write the results
        stats = Progress().to_json()
    stats["wall_s"] = round(time.perf_counter() - started, 1)
    result, ratings = finalize(config, run_dir, plan, stats)
    if show_progress:
        print((run_dir / "leaderboard.md").read_text())  # the board and its judge's card
        print(_throughput_line(stats))
    return ArenaResult(run_dir, result, ratings, stats)


def serve_and_battle(config: Config, run_dir: Path, instructions: list[Instruction], base: BattlePlan,
                     plan: BattlePlan, template: PairwiseTemplate, factories: dict, show_progress: bool,
                     between_stages: bool) -> tuple[dict, BattlePlan]:
    """Serve every model, fight the plan to its end (for active pairing: round after round, each chosen from
    what the last settled), take what was started down again. Returns the stats and the plan fought."""
    started = time.perf_counter()
    models = {n: config.models[n] for n in config.served_models()}
    passes: list[dict] = []
    with ray_session(config.ray), served(models, config.serve, factories=factories,
                                         between_stages=between_stages) as handles:
        deploy_s = time.perf_counter() - started
        judge_eval.for_run(config, judge_settings(config, template), judge_clients(config, handles),
                           retry_policy(config), run_dir, show_progress)
        while True:
            if games_left(config, run_dir, plan):
                passes.append(fight(config, run_dir, instructions, plan, template, handles, show_progress))
            battles = next_battles(config, run_dir, plan, instructions)
            if not battles:
                break
            record_round(run_dir, battles)
            log.info("active pairing: round %d, %d battles", len(passes), len(battles))
            plan = recorded_plan(run_dir, base)
        export_outcome(config, run_dir, plan)
    stats = combined(passes)
    stats["deploy_s"] = round(deploy_s, 1)
    return stats, plan


def fight(config: Config, run_dir: Path, instructions: list[Instruction], plan: BattlePlan,
          template: PairwiseTemplate, handles: dict, show_progress: bool) -> dict:
    """One coordinator run over the plan's games that are still open."""
    a = config.arena
    starts_before = count_events(run_dir, "coordinator_start")
    coordinator = start_coordinator(
        name=coordinator_name(run_dir), max_restarts=a.coordinator_restarts,
        run_dir=str(run_dir.resolve()), instructions=instructions, plan=plan,
        competitors={n: (handles[n], capacity(config, n)) for n in a.competitors},
        judges={name: (handles[name], capacity(config, name)) for name in config.judges()},
        judge_settings=judge_settings(config, template), retry=retry_policy(config),
        flush_every=a.flush_every, flush_interval_s=a.flush_interval_s)
    stats = watch(coordinator, show_progress).to_json()
    stats["coordinator_restarts"] = count_events(run_dir, "coordinator_start") - starts_before - 1
    return stats


def games_left(config: Config, run_dir: Path, plan: BattlePlan) -> bool:
    index = Ledger(run_dir).index(tuple(config.judge.panel))
    return next(remaining(plan, index, config.judge.max_attempts), None) is not None


def next_battles(config: Config, run_dir: Path, plan: BattlePlan, instructions: list[Instruction]) -> list:
    """Active pairing's next round, chosen from what the ledger settled ([] for the static pairings)."""
    a = config.arena
    if a.pairing != "active":
        return []
    settled = outcome(config, Ledger(run_dir), plan).battles
    batch = a.active.batch or max(4, 2 * capacity(config, config.judge.model))
    return next_round(plan, settled, a.competitors, [i.instruction_id for i in instructions], a.active, batch,
                      a.max_battles)


def combined(passes: list[dict]) -> dict:
    """The counters of one or more coordinator runs (active rounds), added up."""
    if not passes:
        return Progress().to_json()
    out = dict(passes[-1])
    for key, value in passes[-1].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = sum(p.get(key, 0) for p in passes)
    meters: dict[str, dict] = {}
    for p in passes:
        for role, m in p["meters"].items():
            if role not in meters:
                meters[role] = dict(m)
                continue
            acc = meters[role]
            for k in ("requests", "completion_tokens", "retries", "failures", "busy_s"):
                acc[k] += m[k]
            acc["tokens_per_s"] = round(acc["completion_tokens"] / acc["busy_s"], 2) if acc["busy_s"] else 0.0
    out["meters"], out["passes"] = meters, len(passes)
    return out


def export_outcome(config: Config, run_dir: Path, plan: BattlePlan) -> None:
    """Battles decided and the position-swap disagreement rate, as gauges, while the cluster is still up."""
    result = outcome(config, Ledger(run_dir), plan)
    metrics = ArenaMetrics(run_dir.name)
    metrics.set("arena_battles", len(result.battles))
    metrics.set("arena_position_disagreement_rate", disagreement_rate(result))


def _throughput_line(stats: dict) -> str:
    parts = [f"{name}: {m['tokens_per_s']:.1f} tok/s (mean in flight {m['mean_in_flight']:.1f}/{m['capacity']})"
             for name, m in stats["meters"].items() if m["requests"]]
    return "throughput — " + "; ".join(parts) if parts else "throughput — nothing was left to do (a finished run, resumed)"
