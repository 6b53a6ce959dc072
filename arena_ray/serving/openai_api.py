"""The OpenAI API's request and response bodies for a served model (`/<model>/v1/chat/completions`,
`/v1/completions`, `/v1/models`), and this project's own POST /<model> body. Pure: the deployment reads the
HTTP request and sends what these functions build, so any OpenAI client (the `openai` package, curl, LangChain…)
reaches every model — vLLM, an external endpoint or recorded answers — the same way.

Not served: streaming and n > 1 (refused with a 400 naming the field). `/v1/completions` sends the prompt as one
user turn through the model's own prompt format (a chat template or its completion template)."""
from __future__ import annotations

import json
import math
import time
import uuid

from arena_ray.records import ChatMessage, Completion, GenerationRequest, SamplingSpec

MAX_BODY_BYTES = 4 * 1024 * 1024      # a request body larger than this is refused (413) before it is parsed
MAX_TOKENS = 1 << 20


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


async def read_body(http_request) -> dict:
    raw = await http_request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body of {len(raw)} bytes is over the limit of {MAX_BODY_BYTES}", 413)
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"the body is not JSON ({err})") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _number(body: dict, key: str, default, low: float, high: float):
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise BadRequest(f"'{key}' must be a number from {low:g} to {high:g}, got {value!r}")
    return value


def _messages(body: dict) -> tuple[ChatMessage, ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content}")
    out = []
    for k, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # OpenAI's content parts: the text ones, joined
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(content, str):
            raise BadRequest(f"messages[{k}] must be {{role: system|user|assistant, content: text}}")
        out.append(ChatMessage(m["role"], content))
    return tuple(out)


def generation_request(body: dict, kind: str | None) -> GenerationRequest:
    """kind: "chat" (/v1/chat/completions), "text" (/v1/completions) or None (POST /<model>)."""
    if body.get("stream"):
        raise BadRequest("'stream' is not served; ask without it")
    if _number(body, "n", 1, 1, 1) != 1:
        raise BadRequest("'n' must be 1")
    if kind == "text":
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise BadRequest("'prompt' must be a non-empty string")
        messages = (ChatMessage("user", prompt),)
    else:
        messages = _messages(body)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    sampling = None
    if max_tokens is not None:
        sampling = SamplingSpec(max_tokens=int(_number({"max_tokens": max_tokens}, "max_tokens", 1, 1, MAX_TOKENS)),
                                temperature=float(_number(body, "temperature", 0.0, 0, 2)),
                                top_p=float(_number(body, "top_p", 1.0, 0, 1)))
    instruction_id = body.get("instruction_id")  # recorded answers (engine: replay) are looked up by it
    if instruction_id is not None and not isinstance(instruction_id, str):
        raise BadRequest("'instruction_id' must be a string")
    return GenerationRequest(f"http-{time.time_ns()}", messages, sampling, instruction_id)


def response(kind: str, model: str, c: Completion) -> dict:
    usage = {"prompt_tokens": c.prompt_tokens or 0, "completion_tokens": c.completion_tokens or 0,
             "total_tokens": (c.prompt_tokens or 0) + (c.completion_tokens or 0)}
    finish = c.finish_reason if c.finish_reason in ("stop", "length") else "stop"
    if kind == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": c.text}, "finish_reason": finish,
                  "logprobs": None}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [choice], "usage": usage}
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "text": c.text, "finish_reason": finish, "logprobs": None}],
            "usage": usage}


def models(name: str) -> dict:
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "arena_ray"}]}


def error(message: str, status: int) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": status}}
