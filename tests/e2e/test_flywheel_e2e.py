"""`arena-ray flywheel` end to end on a tiny configuration (tiny random target and judge, replay competitors,
real arena-hard data): one iteration of sft → dpo → ppo (the judge against the strongest competitor's answers as
the PPO reward), killed with SIGKILL mid-run and resumed as a Ray job."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from arena_ray.arena.ledger import Ledger
from arena_ray.train.registry import Registry
from tests.conftest import CPU_ENV, SHARED_DATA
from tests.helpers import CLI, ROOT, kill_session, submit_job, tiny_config_dict

pytestmark = pytest.mark.e2e


def flywheel_config(tmp_path: Path, tiny_model_dir: Path) -> Path:
    data = tiny_config_dict(tmp_path / "unused-arena-run", tiny_model_dir)
    data["arena"]["flush_every"] = 1
    # The random tiny judge decides the data: with the default template's per-request nonce its verdicts (and so
    # whether an iteration has SFT/DPO data at all) change from run to run; pairwise-v1 at temperature 0 makes
    # them the same every run.
    data["judge"]["prompt"] = "pairwise-v1"
    fast = {"max_steps": 2, "per_device_batch_size": 2, "max_length": 1024, "cpus_per_worker": 2,
            "learning_rate": 1e-4}
    data["flywheel"] = {
        "dir": str(tmp_path / "fw"), "target": "tiny", "competitors": ["gpt-4-0314", "gpt-3.5-turbo-0125"],
        "iterations": 1, "stages": ["sft", "dpo", "ppo"], "instructions_per_shard": 4, "eval_limit": 2,
        "data": {"sources": [{"path": str(SHARED_DATA / "instructions" / "arena_hard_v0.1.jsonl"), "limit": 40}],
                 "split": {"shards": 4, "holdout": 4}},
        # A random judge rarely opens a 2-3 point gap: keep every decided battle so training data flows (and
        # 4 instructions a shard, 8 battles: on 2 the random target may win or tie every one, leaving no SFT data).
        "thresholds": {"sft_gap": 0.0, "dpo_gap": 0.0, "rm_gap": 0.0},
        "train": {"sft": fast, "dpo": {**fast, "learning_rate": 1e-5}},
        "ppo": {"steps": 2, "prompts_per_step": 2, "samples_per_prompt": 2, "max_new_tokens": 8,
                # Both orders cancel a purely positional judge (a random one is): sampling its verdicts gives
                # the rewards the spread a policy gradient needs.
                "learning_rate": 1e-3, "reward": {"source": "pairwise", "judge_max_tokens": 16,
                                                  "judge_temperature": 1.0}},
        "version_overrides": {"env": CPU_ENV},
    }
    path = tmp_path / "flywheel.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"flywheel exited early: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(1)


def test_flywheel_two_iterations_killed_and_resumed_as_a_ray_job(tmp_path, tiny_model_dir, request):
    cfg = flywheel_config(tmp_path, tiny_model_dir)
    fw = tmp_path / "fw"
    # First run: SIGKILL the whole process tree once the first SFT model is trained and the DPO battle began.
    # Output to a file, not a pipe nobody reads until the end: a full pipe would block the flywheel's prints.
    log = tmp_path / "first-run.log"
    with log.open("w") as out_file:
        proc = subprocess.Popen(CLI + ["flywheel", "--config", str(cfg)], cwd=ROOT, start_new_session=True,
                                stdout=out_file, stderr=subprocess.STDOUT, text=True)
    wait_for(fw / "battles" / "D1-tiny@1-sft" / "run.json", proc, log, timeout=900)
    kill_session(proc)
    sft_done = fw / "iter1-sft" / "train" / "done.json"
    assert sft_done.exists() and not (fw / "iter1-dpo" / "train" / "done.json").exists()
    stamps = {p: p.stat().st_mtime_ns for p in fw.rglob("done.json")}
    head_node = request.getfixturevalue("head_node")  # started only now: the first run owned its own cluster
    d0_answers = len(Ledger(fw / "battles" / "D0-tiny@0").generations())

    # Second run, as a Ray job on a running cluster (README "Run on a cluster": `ray job submit ... flywheel`):
    # it attaches to the cluster, continues at the DPO stage of iteration 1 and finishes.
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    shutil.copy(cfg, job_dir / "flywheel.yaml")
    out = submit_job(head_node, job_dir, "flywheel-e2e", ["flywheel", "--config", "flywheel.yaml"])
    assert out.returncode == 0 and "succeeded" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "a finished stage ran again"
    assert len(Ledger(fw / "battles" / "D0-tiny@0").generations()) == d0_answers

    registry = Registry(fw)
    names = [v.name for v in registry.versions()]
    assert names == ["tiny@0", "tiny@1-sft", "tiny@1-dpo", "tiny@1"]
    assert [v.stage for v in registry.versions()] == ["base", "sft", "dpo", "ppo"]
    trained = {v.stage: v for v in registry.versions()}
    assert trained["sft"].metrics.get("steps") == 2 and trained["dpo"].metrics.get("steps") == 2
    assert trained["ppo"].metrics["steps"] == 2 and trained["ppo"].metrics["reward"] == "pairwise"
    assert len({v.digest for v in registry.versions()}) == 4  # every stage changed the weights
    # PPO's rollouts came from the dpo version's deployment, the weights pushed into it after each step, and
    # its rewards from the judge against the strongest competitor's recorded answers on the stage's shard.
    ppo_steps = [json.loads(line) for line in (fw / "iter1-ppo" / "ppo" / "steps.jsonl").read_text().splitlines()]
    assert [s["versions_seen"] for s in ppo_steps] == [[0], [1]]
    assert all(s["reward_mean"] is not None and -1 <= s["reward_mean"] <= 1 for s in ppo_steps)
    references = list((fw / "iter1-ppo" / "reference").glob("*.jsonl"))
    assert [r.stem for r in references] in (["gpt-4-0314"], ["gpt-3.5-turbo-0125"])
    assert len(references[0].read_text().splitlines()) == 4

    summary = json.loads((fw / "summary.json").read_text())
    rows = summary["iterations"]
    assert [r["version"] for r in rows] == ["tiny@0", "tiny@1"]
    # A bootstrap on a few battles may leave an interval open on one side (None = unbounded).
    assert all(r["rating"] is not None and (r["ci"][0] is None or r["ci"][0] <= r["rating"])
               and (r["ci"][1] is None or r["rating"] <= r["ci"][1]) for r in rows)
    assert [s["method"] for s in rows[1]["stages"]] == ["sft", "dpo", "ppo"]
    assert all(s["battles"] > 0 for s in rows[1]["stages"])
    assert rows[1]["stages"][0]["loss_first"] is not None and rows[1]["stages"][2]["reward_first"] is not None
    assert set(rows[1]["win_rate"]) == {"gpt-4-0314", "gpt-3.5-turbo-0125"}
    # tiny@1 against @0 head to head (replayed from @0's eval answers), both orders judged per battle.
    h2h = rows[1]["head_to_head"]
    assert h2h["battles"] == 2 and h2h["wins"] + h2h["ties"] + h2h["losses"] == 2 and len(h2h["ci"]) == 2
    assert rows[1]["lc_reference"] == "gpt-4-0314" and rows[1]["raw_win_rate"] is not None
    assert all(r["mean_length"] > 0 for r in rows) and "length_hacking" in summary
    # Every stage's version was rated on the held-out set, each against the versions before it.
    for name, before in (("tiny@1-sft", {"tiny@0"}), ("tiny@1-dpo", {"tiny@0", "tiny@1-sft"}),
                         ("tiny@1", {"tiny@0", "tiny@1-sft", "tiny@1-dpo"})):
        board = json.loads((fw / "eval" / name / "leaderboard.json").read_text())
        assert before | {name, "gpt-4-0314"} <= set(board["models"]), (name, board["models"])
    sft_measures, dpo_measures = rows[1]["stages"][0]["measures"], rows[1]["stages"][1]["measures"]
    assert sft_measures["head_to_head"]["battles"] == 2 and set(dpo_measures["win_rate"]) == set(rows[1]["win_rate"])
    table = (fw / "summary.md").read_text()
    lines = {line.split(" | ")[1]: line for line in table.splitlines() if line.startswith("| ")}
    assert lines["tiny@1-sft"].startswith("| 1 | tiny@1-sft | sft |") and "| tiny@1-dpo | dpo |" in table
    assert "| tiny@1 | ppo |" in table and "vs @0 (95% CI)" in table
    for name in ("tiny@1-sft", "tiny@1-dpo", "tiny@1"):  # each with its head-to-head and win rates
        assert re.search(r"\| \d\.\d\d \(\d\.\d\d–\d\.\d\d\) \d/\d/\d \|", lines[name]), lines[name]
        assert re.search(r"\| \d\.\d\d \| \d\.\d\d \|$", lines[name]), lines[name]
    assert "LC win vs gpt-4-0314" in table and "win vs gpt-4-0314" in table
    assert "tiny@1" in out.stdout  # the table was printed
    # The shards used were disjoint from the held-out eval set.
    assert json.loads((fw / "data" / "done.json").read_text())["holdout"] == 4
