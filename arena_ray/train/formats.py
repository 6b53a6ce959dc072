"""Curated Parquet rows → the dataset rows TRL's trainers read. Pure (no torch).

Curated files are written in TRL's conversational forms (what `trl.is_conversational` recognises): SFT as
`messages`, DPO and reward-model pairs as `prompt` (user messages), `chosen` and `rejected` (one assistant
message each), so any chat model is trained with its own chat template. For training here, chat models keep
them (SFT as prompt/completion, loss on the answer only); base models without a chat template get the same
keys as plain strings built with the model's completion template, the way the arena prompts them. Files of
earlier releases (plain-string pairs) are still read.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pyarrow as pa

from arena_ray.errors import InputError
from arena_ray.settings.train import Method

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))  # a column of chat messages


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def preference_messages(prompt: str, chosen: str, rejected: str) -> dict:
    """A preference pair in TRL's conversational form (the columns curated dpo/rm files and self-reward pairs
    are written with)."""
    return {"prompt": _user(prompt), "chosen": _assistant(chosen), "rejected": _assistant(rejected)}


def _text_of(value, role: str, where: str, key: str) -> str:
    """The content of a string field, or of the last `role` message of a message-list field."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list):
        texts = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == role]
        if texts and isinstance(texts[-1], str) and texts[-1]:
            return texts[-1]
    raise InputError(f"{where}: field '{key}' must be a non-empty string or chat messages with a {role} turn")


def sft_row(row: dict, where: str, completion_template: Optional[str]) -> dict:
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2 or messages[-1].get("role") != "assistant":
        raise InputError(f"{where}: field 'messages' must end with an assistant turn")
    prompt, answer = messages[:-1], messages[-1]["content"]
    if completion_template is None:
        return {"prompt": prompt, "completion": _assistant(answer)}
    user = next(m["content"] for m in prompt if m["role"] == "user")
    return {"prompt": completion_template.replace("{instruction}", user), "completion": " " + answer}


def preference_row(row: dict, where: str, completion_template: Optional[str]) -> dict:
    prompt, chosen, rejected = (_text_of(row.get("prompt"), "user", where, "prompt"),
                                _text_of(row.get("chosen"), "assistant", where, "chosen"),
                                _text_of(row.get("rejected"), "assistant", where, "rejected"))
    if completion_template is None:
        if isinstance(row["prompt"], list):  # already conversational: the whole prompt (system turn, history)
            return {"prompt": row["prompt"], "chosen": _assistant(chosen), "rejected": _assistant(rejected)}
        return preference_messages(prompt, chosen, rejected)
    return {"prompt": completion_template.replace("{instruction}", prompt), "chosen": " " + chosen,
            "rejected": " " + rejected}


def rows_for(method: Method, rows: Sequence[dict], source: str, completion_template: Optional[str] = None) -> list[dict]:
    make = sft_row if method == "sft" else preference_row
    return [make(r, f"{source}[row {i}]", completion_template) for i, r in enumerate(rows)]
