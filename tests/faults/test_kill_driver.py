"""SIGKILL the driver and everything it started (Ray, replicas, vLLM engines) in the middle of an arena, then
re-run the same command: the battle ids equal the plan's (an uninterrupted run's), each once, and no answer recorded
before the kill is asked for again."""
from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from arena_ray.settings import load
from tests.conftest import ROOT
from tests.helpers import CLI, kill_session, planned_battle_ids, run_cli, tiny_config_dict

pytestmark = pytest.mark.faults


def _ok_games(run: Path) -> Counter:
    rows = pq.read_table(run / "judgments.parquet").to_pylist()
    return Counter((r["battle_id"], r["position"]) for r in rows if r["parse_ok"])


def test_sigkill_driver_mid_run_then_resume(tmp_path, tiny_model_dir, fault_table):
    def config(name: str) -> str:
        data = tiny_config_dict(tmp_path / name, tiny_model_dir, limit=4)
        data["arena"]["flush_every"] = 1  # write every result at once, so a kill lands mid-run
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    ref_ids = planned_battle_ids(load(config("reference")))
    assert len(ref_ids) == 4 * 3

    crashed_cfg = config("crashed")
    proc = subprocess.Popen(CLI + ["arena", "--quiet", "--config", crashed_cfg], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "crashed" / "ledger" / "judgments"
    deadline = time.monotonic() + 600
    while len(list(parts.glob("part-*.parquet"))) < 3:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    kill_session(proc)
    assert not (tmp_path / "crashed" / "battles.jsonl").exists()  # it really died mid-run
    generated_before = {(r["instruction_id"], r["model"])
                        for p in (tmp_path / "crashed/ledger/generations").glob("part-*.parquet")
                        for r in pq.read_table(p).to_pylist()}

    resumed = run_cli(["arena", "--config", crashed_cfg])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = (tmp_path / "crashed" / "battles.jsonl").read_text().splitlines()
    ids = [json.loads(line)["battle_id"] for line in lines]
    assert set(ids) == ref_ids and len(ids) == len(ref_ids)
    assert set(_ok_games(tmp_path / "crashed").values()) == {1}
    gens = pq.read_table(tmp_path / "crashed" / "generations.parquet").to_pylist()
    assert len(gens) == len({(g["instruction_id"], g["model"]) for g in gens}) == 4 * 3
    stats = json.loads((tmp_path / "crashed" / "stats.json").read_text())["this_run"]
    assert stats["generations_total"] == 4 * 3 - len(generated_before)  # recorded answers not asked again
    fault_table.append({"fault": "SIGKILL driver + re-run", "expected": len(ref_ids), "recorded": len(set(ids)),
                        "lost": len(ref_ids - set(ids)), "duplicated": len(ids) - len(set(ids)),
                        "retried": sum(m["retries"] for m in stats["meters"].values())})
