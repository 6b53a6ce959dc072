"""Kill a competitor replica, the judge replica and the coordinator actor (ray.kill) in the middle of a real
arena (tiny vLLM models on a local Ray): the run completes with exactly the uninterrupted run's battle ids,
each once, and no answer recorded before the fault is generated again."""
from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray

from arena_ray.settings import from_dict
from arena_ray.workflows.arena import coordinator_name, run_arena
from tests.helpers import planned_battle_ids, tiny_config_dict

pytestmark = pytest.mark.faults


def config(run_dir: Path, tiny_model_dir: Path):
    data = tiny_config_dict(run_dir, tiny_model_dir, limit=4)
    # A second served competitor (same weights) that answers one request at a time with long answers, so that
    # it is still generating when it is killed.
    data["models"]["tiny-b"] = {**data["models"]["tiny"], "max_ongoing_requests": 1, "max_tokens": 256}
    data["arena"] = {"competitors": ["tiny", "tiny-b", "gpt-4-0314", "gpt-3.5-turbo-0125"], "flush_every": 1,
                     "flush_interval_s": 0.5, "max_retries": 6, "retry_backoff_s": 1.0, "request_timeout_s": 120}
    return from_dict(data)


class PartWatcher(threading.Thread):
    """Reads every ledger part file as it appears (the run folds them away at its end), counting how often
    each generation key was written: a count above 1 is an answer requested again after it was recorded."""

    def __init__(self, run_dir: Path):
        super().__init__(daemon=True)
        self.run_dir, self.seen, self.stop = run_dir, set(), threading.Event()
        self.generations: Counter = Counter()
        self.judgments = 0

    def poll(self) -> None:
        for table in ("generations", "judgments"):
            for path in sorted((self.run_dir / "ledger" / table).glob("part-*.parquet")):
                if path in self.seen:
                    continue
                try:
                    rows = pq.read_table(path).to_pylist()
                except (FileNotFoundError, OSError):
                    continue  # folded away between glob and read
                self.seen.add(path)
                if table == "generations":
                    self.generations.update((r["instruction_id"], r["model"]) for r in rows)
                else:
                    self.judgments += len(rows)

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            time.sleep(0.05)


def battle_ids(run_dir: Path) -> list[str]:
    import json
    return [json.loads(line)["battle_id"] for line in (run_dir / "battles.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(local_ray, tiny_model_dir, tmp_path_factory):
    return planned_battle_ids(config(tmp_path_factory.mktemp("faults") / "reference", tiny_model_dir))


def serve_replica(app: str):
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == "serve" and entry["name"].startswith(f"SERVE_REPLICA::{app}#"):
            return ray.get_actor(entry["name"], namespace="serve")
    raise AssertionError(f"no replica of {app}")


def kill(target: str, run_dir: Path) -> None:
    if target == "coordinator":
        ray.kill(ray.get_actor(coordinator_name(run_dir)), no_restart=False)
    else:
        ray.kill(serve_replica(target), no_restart=True)  # Serve notices and starts a replacement


@pytest.mark.parametrize("target", ["tiny-b", "tiny", "coordinator"],
                         ids=["competitor-replica", "judge-replica", "coordinator"])
def test_kill_mid_run(target, reference, tiny_model_dir, tmp_path, fault_table):
    expected = reference
    run = tmp_path / "run"
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_arena(config(run, tiny_model_dir),
                                                                             show_progress=False)))
    watcher = PartWatcher(run)
    worker.start()
    watcher.start()
    deadline = time.monotonic() + 300
    def mid_run() -> bool:  # some results recorded, the killed part still has work
        if target == "tiny-b":
            return any(model == "tiny-b" for _, model in watcher.generations)
        return watcher.judgments >= 6
    while not mid_run():
        assert worker.is_alive() and time.monotonic() < deadline, "the run ended before the fault"
        time.sleep(0.05)
    before, judged_before = set(watcher.generations), watcher.judgments
    kill(target, run)
    worker.join(timeout=600)
    watcher.stop.set()
    watcher.join()
    assert not worker.is_alive() and "result" in outcome
    result = outcome["result"]

    got = battle_ids(run)
    assert before and all(watcher.generations[k] == 1 for k in before), \
        "an answer recorded before the fault was generated again"
    assert set(got) == expected and len(got) == len(set(got))
    retried = sum(m["retries"] for m in result.stats["meters"].values()) + result.stats["coordinator_restarts"]
    if target == "coordinator":
        assert result.stats["coordinator_restarts"] == 1
    else:
        # A request on the killed replica fails and is retried by the coordinator; a request still queued in
        # Serve's router when the replica dies is sent to its replacement without a failure. Either way the
        # killed model's remaining work must have been done after the fault, by the new replica.
        done_after = ({k for k in watcher.generations if k[1] == "tiny-b"} - before if target == "tiny-b"
                      else watcher.judgments > judged_before)
        assert retried > 0 or done_after, "the killed replica's work was neither retried nor done after the fault"
    fault_table.append({"fault": f"ray.kill {target}", "expected": len(expected), "recorded": len(set(got)),
                        "lost": len(expected - set(got)), "duplicated": len(got) - len(set(got)), "retried": retried})
