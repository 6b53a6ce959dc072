"""Configs for integration tests: a tiny random vLLM model (competitor and judge) plus replay models."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import psutil

from tests.conftest import CPU_ENV, ROOT, SHARED_DATA, free_port

CLI = [sys.executable, "-m", "arena_ray.cli"]
BIN = Path(sys.executable).parent
METRICS_PORT = 8089

ARENA_HARD = SHARED_DATA / "instructions" / "arena_hard_v0.1.jsonl"
ANSWERS = SHARED_DATA / "answers" / "arena_hard_v0.1"


def tiny_config_dict(run_dir: Path, tiny_model_dir: Path, limit: int = 2, extra_models: dict | None = None) -> dict:
    models = {
        "tiny": {"engine": "vllm", "path": str(tiny_model_dir), "max_tokens": 16, "max_ongoing_requests": 8,
                 "env": CPU_ENV, "vllm": {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048,
                                          "gpu_memory_utilization": 0.25, "max_num_seqs": 8}},
        "gpt-4-0314": {"engine": "replay", "path": str(ANSWERS / "gpt-4-0314.jsonl"), "num_cpus": 0.1},
        "gpt-3.5-turbo-0125": {"engine": "replay", "path": str(ANSWERS / "gpt-3.5-turbo-0125.jsonl"),
                               "num_cpus": 0.1},
        **(extra_models or {}),
    }
    return {
        "run_dir": str(run_dir),
        "ray": {"include_dashboard": False},
        # Applications stay up for the next test of the session with the same model settings (see local_ray);
        # a port of its own, so that a CLI run's own cluster never meets the session's proxy.
        "serve": {"keep_alive": True, "http_port": free_port()},
        "instructions": {"path": str(ARENA_HARD), "limit": limit},
        "models": models,
        "arena": {"competitors": list(models), "flush_interval_s": 0.5},
        # No judge card: a random tiny judge's card says nothing, and fault tests count the judge's requests
        # (tests/workflows/test_judge_card.py measures cards).
        "judge": {"model": "tiny", "max_tokens": 12, "max_answer_chars": 400, "card": False},
        "rating": {"bootstrap_rounds": 20},
    }


def run_cli(args, timeout=1500, **kw):
    return subprocess.run(CLI + args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and everything it started (Ray, replicas, vLLM engines): a crashed machine."""
    sid = os.getsid(proc.pid)
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                p.send_signal(signal.SIGKILL)
        except (ProcessLookupError, psutil.Error):
            pass
    proc.wait(timeout=60)


class FakeOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint: records (path, Authorization, body); chat answers "7" with logprobs."""

    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.seen.append((self.path, self.headers.get("Authorization"), body))
        if self.path.endswith("/chat/completions"):
            logprobs = {"content": [{"token": "7", "logprob": -0.1, "bytes": None,
                                     "top_logprobs": [{"token": "7", "logprob": -0.1, "bytes": None},
                                                      {"token": "8", "logprob": -2.4, "bytes": None}]}]}
            choice = {"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                      "message": {"role": "assistant", "content": "7"}}
            payload = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                       "choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
        else:
            payload = {"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                       "choices": [{"index": 0, "text": " four", "finish_reason": "stop", "logprobs": None}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def submit_job(env: dict, job_dir: Path, submission_id: str, args: list[str], timeout: int = 1500):
    """`ray job submit --working-dir JOB_DIR -- arena-ray ARGS` against the head node; returns the result."""
    return subprocess.run([str(BIN / "ray"), "job", "submit", "--submission-id", submission_id, "--working-dir",
                           str(job_dir), "--", str(BIN / "arena-ray"), *args],
                          cwd=ROOT, env={**env, "RAY_ADDRESS": "http://127.0.0.1:8265"}, capture_output=True,
                          text=True, timeout=timeout)


def planned_battle_ids(config) -> set[str]:
    """The battle ids an uninterrupted arena of `config` ends with: ids are deterministic (instruction, pair,
    judge, prompt version), so the plan is the reference a faulted run must reproduce exactly once each."""
    from arena_ray.data.ingest import load_instructions
    from arena_ray.judging.prompts import load_template
    from arena_ray.workflows.arena import make_plan

    i = config.instructions
    instructions = load_instructions(i.path, i.format, i.offset, i.limit)
    return {pb.battle_id for pb in make_plan(config, instructions, load_template(config.judge.prompt))}


def fake_arena_run(run: Path, instructions: list, models: dict[str, int], judge, template: str = "pairwise-v3-fenced"):
    """An arena run made by the real scheduler and ledger with instant fakes (no Ray): each model answers by
    repeating the prompt `models[name]` times, `judge` is a fake pairwise judge. Returns (plan, stats) for
    results.finalize."""
    import asyncio

    from arena_ray.arena.ledger import Ledger, save_instructions
    from arena_ray.arena.pairing import BattlePlan, model_pairs
    from arena_ray.arena.scheduler import BattleScheduler, JudgeSettings
    from arena_ray.judging.prompts import load_template
    from arena_ray.records import SamplingSpec
    from arena_ray.serving.retry import RetryPolicy
    from arena_ray.testing.fakes import EchoEngine

    class Client:
        def __init__(self, engine):
            self.engine, self.capacity = engine, 4

        async def generate(self, request):
            return await self.engine.generate(request)

    t = load_template(template)
    plan = BattlePlan(tuple(i.instruction_id for i in instructions), tuple(model_pairs(list(models), "all_pairs")),
                      "judge", t.version)
    save_instructions(run, instructions)
    sched = BattleScheduler(instructions, plan, {m: Client(EchoEngine(repeat=r)) for m, r in models.items()},
                            Client(judge), JudgeSettings("judge", t, SamplingSpec(64), 0.7, 3, 4000),
                            RetryPolicy(5.0, 0, 0.0), Ledger(run))
    return plan, asyncio.run(sched.run()).to_json()
