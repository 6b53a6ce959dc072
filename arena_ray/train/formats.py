"""Curated Parquet rows → the dataset rows TRL's trainers read. Pure (no torch).

Chat models get TRL's conversational formats (the tokenizer's chat template is applied by TRL):
SFT as prompt/completion (loss on the answer only), preference data as prompt/chosen/rejected messages.
Base models without a chat template get the same keys as plain strings built with the model's completion
template, the way the arena prompts them.
"""
from __future__ import annotations

from typing import Optional, Sequence

from arena_ray.errors import InputError
from arena_ray.settings.train import Method


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def sft_row(row: dict, where: str, completion_template: Optional[str]) -> dict:
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2 or messages[-1].get("role") != "assistant":
        raise InputError(f"{where}: field 'messages' must end with an assistant turn")
    prompt, answer = messages[:-1], messages[-1]["content"]
    if completion_template is None:
        return {"prompt": prompt, "completion": _assistant(answer)}
    user = next(m["content"] for m in prompt if m["role"] == "user")
    return {"prompt": completion_template.format(instruction=user), "completion": " " + answer}


def preference_row(row: dict, where: str, completion_template: Optional[str]) -> dict:
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise InputError(f"{where}: field '{key}' must be a non-empty string")
    if completion_template is None:
        return {"prompt": _user(row["prompt"]), "chosen": _assistant(row["chosen"]),
                "rejected": _assistant(row["rejected"])}
    return {"prompt": completion_template.format(instruction=row["prompt"]), "chosen": " " + row["chosen"],
            "rejected": " " + row["rejected"]}


def rows_for(method: Method, rows: Sequence[dict], source: str, completion_template: Optional[str] = None) -> list[dict]:
    make = sft_row if method == "sft" else preference_row
    return [make(r, f"{source}[row {i}]", completion_template) for i, r in enumerate(rows)]
