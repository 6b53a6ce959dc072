"""The OpenAI API bodies of a served model, checked with the `openai` package's own response types (what its
client parses), and every bad request answered with a status and a message naming the field."""
from __future__ import annotations

import asyncio
import json

import pytest
from openai.types import Completion as OpenAICompletion
from openai.types import Model
from openai.types.chat import ChatCompletion

from arena_ray.records import Completion
from arena_ray.serving import openai_api as api


class Body:
    def __init__(self, raw: bytes):
        self.raw = raw

    async def body(self) -> bytes:
        return self.raw


def read(raw: bytes) -> dict:
    return asyncio.run(api.read_body(Body(raw)))


def test_chat_and_text_requests_become_generation_requests():
    r = api.generation_request({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                                           {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                                "max_completion_tokens": 32, "temperature": 0.5, "instruction_id": "q1"}, "chat")
    assert [(m.role, m.content) for m in r.messages] == [("system", "Be brief."), ("user", "Hi")]
    assert (r.sampling.max_tokens, r.sampling.temperature, r.instruction_id) == (32, 0.5, "q1")
    t = api.generation_request({"prompt": "Once upon", "max_tokens": 8}, "text")
    assert [(m.role, m.content) for m in t.messages] == [("user", "Once upon")] and t.sampling.max_tokens == 8
    assert api.generation_request({"messages": [{"role": "user", "content": "x"}]}, None).sampling is None


def test_responses_are_what_the_openai_client_parses():
    c = Completion("Bonjour.", 7, 3, "length", 0.1)
    chat = ChatCompletion.model_validate(api.response("chat", "smollm2", c))
    assert chat.choices[0].message.content == "Bonjour." and chat.choices[0].finish_reason == "length"
    assert chat.usage.total_tokens == 10 and chat.model == "smollm2"
    text = OpenAICompletion.model_validate(api.response("text", "smollm2", c))
    assert text.choices[0].text == "Bonjour."
    assert [Model.model_validate(m).id for m in api.models("smollm2")["data"]] == ["smollm2"]


@pytest.mark.parametrize("body, kind, needle", [
    ({"messages": []}, "chat", "'messages' must be a non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "chat", "messages[0] must be"),
    ({"messages": [{"role": "user", "content": 5}]}, "chat", "messages[0] must be"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": True}, "chat", "'stream' is not served"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 3}, "chat", "'n'"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "chat", "'max_tokens' must be a number"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 9, "temperature": float("nan")}, "chat",
     "'temperature'"),
    ({"prompt": ["a"]}, "text", "'prompt' must be a non-empty string"),
    ({"messages": [{"role": "user", "content": "x"}], "instruction_id": 5}, None, "'instruction_id'"),
])
def test_bad_requests_name_the_field(body, kind, needle):
    with pytest.raises(api.BadRequest, match=needle.replace("[", r"\[").replace("]", r"\]")) as err:
        api.generation_request(body, kind)
    assert err.value.status == 400
    assert api.error(str(err.value), 400)["error"]["message"] == str(err.value)


def test_bodies_that_are_too_large_or_not_json_objects():
    with pytest.raises(api.BadRequest) as err:
        read(b" " * (api.MAX_BODY_BYTES + 1))
    assert err.value.status == 413
    for raw, needle in ((b"{nope", "not JSON"), (b"[1]", "a JSON object"), (b"\xff", "not JSON")):
        with pytest.raises(api.BadRequest, match=needle):
            read(raw)
    assert read(json.dumps({"a": 1}).encode()) == {"a": 1}
