"""Engines without a cluster: replay lookups, prompt rendering, and the OpenAI client against a loopback
stand-in server that checks what the client sends."""
from __future__ import annotations

import asyncio
import json
import threading
from http.server import ThreadingHTTPServer

import pytest

from arena_ray.records import ChatMessage, GenerationRequest, SamplingSpec
from arena_ray.serving.engines import MissingAnswer, OpenAIEngine, ReplayEngine, completion_prompt, with_system_prompt
from arena_ray.settings.models import ModelConfig
from tests.helpers import ANSWERS, FakeOpenAI

Q = (ChatMessage("user", "What is 2+2?"),)


def test_replay_engine_looks_answers_up_by_instruction():
    engine = ReplayEngine(ModelConfig(engine="replay", path=str(ANSWERS / "gpt-4-0314.jsonl")))
    uid = next(iter(engine.answers))
    out = asyncio.run(engine.generate(GenerationRequest("r", Q, None, uid)))
    assert out.text == engine.answers[uid] and out.finish_reason == "replay"
    with pytest.raises(MissingAnswer, match="no recorded answer for instruction 'nope'"):
        asyncio.run(engine.generate(GenerationRequest("r", Q, None, "nope")))


def test_prompt_formats():
    base = ModelConfig(engine="replay", path="x", prompt_format="completion",
                       completion_template="Q: {instruction}\nA:", system_prompt="Be brief.")
    assert completion_prompt(Q, base) == "Q: Be brief.\n\nWhat is 2+2?\nA:"
    msgs = with_system_prompt(Q, base)
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    own = (ChatMessage("system", "Judge."),) + Q
    assert with_system_prompt(own, base)[0]["content"] == "Judge."  # the caller's system prompt wins


@pytest.fixture
def openai_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeOpenAI.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openai_chat_with_logprobs_and_key_from_env(openai_server, monkeypatch):
    monkeypatch.setenv("ARENA_TEST_KEY", "sk-secret")
    cfg = ModelConfig(engine="openai", openai={"base_url": openai_server, "model": "judge-x",
                                               "api_key_env": "ARENA_TEST_KEY"})
    out = asyncio.run(OpenAIEngine(cfg).generate(GenerationRequest("r", Q, SamplingSpec(max_tokens=8, top_logprobs=2))))
    assert out.text == "7" and out.completion_tokens == 1
    assert out.logprobs[0].token == "7" and out.logprobs[0].top[1] == ("8", -2.4)
    path, auth, body = FakeOpenAI.seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-secret"
    assert body["model"] == "judge-x" and body["max_tokens"] == 8 and body["top_logprobs"] == 2
    assert "sk-secret" not in json.dumps(cfg.model_dump())  # the config names the variable, never the key


def test_openai_completion_format(openai_server):
    cfg = ModelConfig(engine="openai", prompt_format="completion", completion_template="Q: {instruction}\nA:",
                      openai={"base_url": openai_server, "model": "base-x"})
    out = asyncio.run(OpenAIEngine(cfg).generate(GenerationRequest("r", Q)))
    assert out.text == " four"
    path, _, body = FakeOpenAI.seen[0]
    assert path == "/v1/completions" and body["prompt"] == "Q: What is 2+2?\nA:"


def test_chat_template_from_config(tmp_path, smollm2_dir):
    from transformers import AutoTokenizer

    from arena_ray.serving.engines import load_chat_template

    template = "{% for m in messages %}<<{{ m['role'] }}>>{{ m['content'] }}{% endfor %}<<assistant>>"
    path = tmp_path / "t.jinja"
    path.write_text(template)
    assert load_chat_template(str(path)) == template == load_chat_template(template)
    from arena_ray.serving.engines import VLLMEngine

    engine = VLLMEngine.__new__(VLLMEngine)  # rendering only: no engine started
    engine.tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    engine.cfg = ModelConfig(engine="vllm", path=str(smollm2_dir), chat_template=str(path))
    assert engine.render(Q) == "<<user>>What is 2+2?<<assistant>>"
    engine.cfg = ModelConfig(engine="vllm", path=str(smollm2_dir))  # the tokenizer's own (ChatML)
    assert engine.render(Q).endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
