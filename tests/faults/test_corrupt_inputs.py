"""Corrupt inputs through the CLI: each gets exit status 2 and a message (no traceback) naming the file and record, and every
file already written stays byte for byte as it was. Plus: an API key read from the environment appears in no
file of the run directory."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from arena_ray.cli import main
from tests.helpers import ARENA_HARD, FakeOpenAI, tiny_config_dict

pytestmark = pytest.mark.faults


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_run(tmp_path) -> Path:
    """A run directory as a finished arena leaves it (ledger parts kept as parts)."""
    from arena_ray.arena.ledger import Ledger, save_instructions
    from arena_ray.data.ingest import load_instructions
    from arena_ray.records import Generation

    run = tmp_path / "run"
    instructions = load_instructions(ARENA_HARD, limit=2)
    save_instructions(run, instructions)
    Ledger(run).append_generations([Generation(i.instruction_id, "m", "an answer", 3, 2, 0.1, "stop")
                                    for i in instructions])
    (run / "battles.jsonl").write_text(json.dumps({
        "battle_id": "b1", "question_id": instructions[0].instruction_id, "model_a": "m", "model_b": "n",
        "winner": "model_a", "score_a": 8, "score_b": 2, "consistent": True, "judge": "j",
        "prompt_version": "pairwise-v1"}) + "\n")
    return run


def run_cli(args, capsys, code: int) -> str:
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.startswith("arena-ray: error:") and "Traceback" not in err
    return err


def test_truncated_parquet_part(finished_run, tmp_path, capsys):
    part = next((finished_run / "ledger" / "generations").glob("part-*.parquet"))
    part.write_bytes(part.read_bytes()[:50])
    before = snapshot(finished_run)
    err = run_cli(["curate", "--run", str(finished_run), "--target", "m", "--out", str(tmp_path / "cur")], capsys, 3)
    assert part.name in err and "unreadable" in err
    assert snapshot(finished_run) == before


def test_half_written_jsonl_line(finished_run, tmp_path, capsys):
    with (finished_run / "battles.jsonl").open("a") as fh:
        fh.write('{"battle_id": "b2", "question_id": "q", "model_a"')
    before = snapshot(finished_run)
    err = run_cli(["rate", "--battles", str(finished_run / "battles.jsonl"), "--out", str(tmp_path / "r")], capsys, 3)
    assert "battles.jsonl:2" in err and "malformed JSON" in err
    assert snapshot(finished_run) == before


def test_missing_checkpoint_shard(tmp_path, tiny_model_dir, capsys):
    model = tmp_path / "sharded"
    model.mkdir()
    (model / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    (model / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (model / "model-00001-of-00002.safetensors").write_bytes(b"x")
    data = tiny_config_dict(tmp_path / "unused", model)
    data["flywheel"] = {"dir": str(tmp_path / "fw"), "target": "tiny", "competitors": ["gpt-4-0314"], "iterations": 1,
                        "data": {"sources": [{"path": str(ARENA_HARD)}]}}
    (tmp_path / "fw.yaml").write_text(yaml.safe_dump(data))
    err = run_cli(["flywheel", "--config", str(tmp_path / "fw.yaml")], capsys, 5)
    assert "model-00002-of-00002.safetensors" in err and str(model) in err
    assert not (tmp_path / "fw" / "registry.jsonl").exists()


def test_config_with_a_wrong_type(finished_run, tmp_path, tiny_model_dir, capsys):
    data = tiny_config_dict(finished_run, tiny_model_dir)
    data["arena"]["max_retries"] = "three"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    before = snapshot(finished_run)
    err = run_cli(["arena", "--config", str(tmp_path / "bad.yaml")], capsys, 2)
    assert "bad.yaml" in err and "arena.max_retries" in err
    assert snapshot(finished_run) == before


def test_api_key_never_reaches_the_run_directory(tmp_path, tiny_model_dir, monkeypatch):
    import ray

    from arena_ray.settings import from_dict
    from arena_ray.testing.fakes import LengthJudge
    from arena_ray.workflows.arena import run_arena

    secret = "sk-arena-test-0123456789"
    monkeypatch.setenv("ARENA_REMOTE_KEY", secret)
    FakeOpenAI.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = tiny_config_dict(tmp_path / "run", tiny_model_dir, limit=2, extra_models={"remote": {
        "engine": "openai", "num_cpus": 0.1, "openai": {"base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
                                                        "model": "remote", "api_key_env": "ARENA_REMOTE_KEY"}}})
    data["serve"]["keep_alive"] = False
    # The key is only in this process's environment; the cluster's workers inherit it from the process that
    # starts the cluster, as on a real head node. So this test starts its own (the tier's shared cluster starts
    # later, with the kill tests).
    assert not ray.is_initialized()
    ray.init(address="local", num_cpus=8, include_dashboard=False, namespace="arena_ray_secrets")
    try:
        result = run_arena(from_dict(data), show_progress=False, engine_factories={"tiny": lambda cfg: LengthJudge()})
    finally:
        from ray import serve
        serve.shutdown()
        ray.shutdown()
        server.shutdown()
    assert any("remote" in (b.model_a, b.model_b) for b in result.tally.battles)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the API key leaked into {path}"
    assert any(auth == f"Bearer {secret}" for _, auth, _ in FakeOpenAI.seen)  # the key did reach the endpoint
    remote = [r for r in pq.read_table(tmp_path / "run" / "generations.parquet").to_pylist() if r["model"] == "remote"]
    assert len(remote) == 2 and all(r["text"] == "7" for r in remote)
