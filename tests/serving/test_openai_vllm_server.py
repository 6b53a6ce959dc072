"""The `openai` engine against a real vLLM OpenAI-compatible server (tiny model) as the arena's judge."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from arena_ray.settings import from_dict
from arena_ray.workflows.arena import run_arena
from tests.conftest import CPU_ENV
from tests.helpers import tiny_config_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir),
           "--served-model-name", "tiny-judge", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--enforce-eager", "--max-model-len", "2048", "--gpu-memory-utilization", "0.25"]
    proc = subprocess.Popen(cmd, env={**os.environ, **CPU_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(base + "/models", timeout=2).close()
            break
        except OSError:
            assert proc.poll() is None, "vLLM server exited"
            assert time.monotonic() < deadline, "vLLM server did not come up"
            time.sleep(2)
    yield base
    os.killpg(proc.pid, 9)
    proc.wait()


def test_arena_with_an_external_vllm_judge(local_ray, tmp_path, tiny_model_dir, vllm_server):
    data = tiny_config_dict(tmp_path / "run", tiny_model_dir, limit=1)
    del data["models"]["tiny"]  # competitors: the two replays; the judge: the external server
    data["models"]["ext-judge"] = {"engine": "openai", "openai": {"base_url": vllm_server, "model": "tiny-judge",
                                                                  "structured_outputs": True}, "num_cpus": 0.1}
    data["arena"]["competitors"] = ["gpt-4-0314", "gpt-3.5-turbo-0125"]
    data["judge"]["model"] = "ext-judge"
    result = run_arena(from_dict(data), show_progress=False)
    assert len(result.tally.battles) == 1 and result.tally.failed_battles == 0
    import pyarrow.parquet as pq
    games = pq.read_table(tmp_path / "run/judgments.parquet").to_pylist()
    assert all(g["parse_ok"] for g in games)  # the server honoured the structured-output request
    board = json.loads((tmp_path / "run/leaderboard.json").read_text())
    assert set(board["models"]) == {"gpt-4-0314", "gpt-3.5-turbo-0125"}


def test_openai_engine_gets_logprobs_and_constrained_output(vllm_server):
    import asyncio

    from arena_ray.judging.prompts import load_template
    from arena_ray.records import GenerationRequest, SamplingSpec
    from arena_ray.serving.engines import OpenAIEngine
    from arena_ray.settings.models import ModelConfig

    engine = OpenAIEngine(ModelConfig(engine="openai", openai={"base_url": vllm_server, "model": "tiny-judge",
                                                                "structured_outputs": True}))
    template = load_template("pairwise-v1")
    out = asyncio.run(engine.generate(GenerationRequest("g", template.messages("Q?", "A1", "A2"), SamplingSpec(
        max_tokens=12, top_logprobs=5, regex=template.output_regex))))
    from arena_ray.judging.parse import parse_pairwise
    assert parse_pairwise(out.text).ok and out.completion_tokens <= 12
    assert out.logprobs and len(out.logprobs[0].top) == 5
    assert "".join(t.token for t in out.logprobs).startswith(out.text.split("\n")[0])
