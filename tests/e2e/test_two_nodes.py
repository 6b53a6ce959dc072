"""Two Ray nodes: a second `ray start --address` joins the session's head node on this machine with a custom
resource, as a GPU worker group joins a CPU head on a real cluster. An arena's competitor is pinned to it by
`models.<name>.resources`, and a two-worker training run is spread over both nodes (STRICT_SPREAD: one
worker per node, or it never starts)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers import BIN, run_cli, tiny_config_dict

pytestmark = pytest.mark.e2e


def ray_list(env: dict, what: str) -> list[dict]:
    out = subprocess.run([str(BIN / "ray"), "list", what, "--format", "json", "--limit", "10000", "--detail"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    start = out.stdout.find("[")  # where there is none, Ray prints a sentence instead of a JSON list
    return json.loads(out.stdout[start:]) if start >= 0 else []


@pytest.fixture
def second_node(head_node):
    """A second raylet joined to the head (`--block`: it lives as long as this process), with 2 CPUs and the
    custom resource `second_node`; yields its node id."""
    proc = subprocess.Popen([str(BIN / "ray"), "start", "--address", "127.0.0.1:6379", "--num-cpus", "2",
                             "--resources", '{"second_node": 10}', "--node-ip-address", "127.0.0.1", "--block",
                             "--disable-usage-stats"], env=head_node, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    node = None
    while node is None:
        assert proc.poll() is None and time.monotonic() < deadline, "the second node did not join"
        time.sleep(2)
        node = next((n["node_id"] for n in ray_list(head_node, "nodes") if n["state"] == "ALIVE"
                     and "second_node" in (n.get("resources_total") or {})), None)
    yield node
    proc.terminate()
    proc.wait(timeout=120)


def test_competitor_pinned_to_the_second_node_and_training_across_both(tmp_path, tiny_model_dir, head_node,
                                                                        second_node):
    env = {**head_node, "RAY_ADDRESS": "127.0.0.1:6379"}
    data = tiny_config_dict(tmp_path / "run", tiny_model_dir)
    data["serve"]["keep_alive"] = False  # the pinned replica goes with the test, not with the session
    data["models"] = {k: v for k, v in data["models"].items() if k != "gpt-3.5-turbo-0125"}
    data["models"]["gpt-4-0314"]["resources"] = {"second_node": 1}
    data["arena"]["competitors"] = ["tiny", "gpt-4-0314"]
    cfg = tmp_path / "arena.yaml"
    cfg.write_text(yaml.safe_dump(data))
    before = {a["actor_id"] for a in ray_list(head_node, "actors")}  # earlier tests' replicas of the session
    proc = run_cli(["arena", "--config", str(cfg), "--quiet"], timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    board = json.loads((tmp_path / "run" / "leaderboard.json").read_text())
    assert set(board["models"]) == {"tiny", "gpt-4-0314"}
    replicas = [a for a in ray_list(head_node, "actors") if a["class_name"].startswith("ServeReplica:gpt-4-0314:")
                and a["actor_id"] not in before]
    assert replicas and {a["node_id"] for a in replicas} == {second_node}

    # Two SFT workers, one per node: STRICT_SPREAD bundles can only be placed on two different nodes.
    rows = [{"messages": [{"role": "user", "content": f"Name a colour ({k})."},
                          {"role": "assistant", "content": "Blue."}]} for k in range(8)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "sft.parquet")
    earlier = {a["actor_id"] for a in ray_list(head_node, "actors")}
    script = ("import sys; from pathlib import Path; from arena_ray.train.run import train; "
              "from arena_ray.settings.train import TrainConfig; "
              "r = train('sft', Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), TrainConfig("
              "num_workers=2, cpus_per_worker=1, placement_strategy='STRICT_SPREAD', max_steps=2, "
              "per_device_batch_size=1, max_length=256, learning_rate=1e-4)); print(r.metrics['steps'])")
    trained = subprocess.run([sys.executable, "-c", script, str(tiny_model_dir), str(tmp_path / "sft.parquet"),
                              str(tmp_path / "model")], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert trained.stdout.strip().splitlines()[-1] == "2"
    workers = [a for a in ray_list(head_node, "actors") if "TrainWorker" in a["class_name"]
               and a["actor_id"] not in earlier]
    assert len(workers) == 2 and second_node in {a["node_id"] for a in workers}
    assert len({a["node_id"] for a in workers}) == 2, workers
