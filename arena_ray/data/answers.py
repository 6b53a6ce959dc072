"""Recorded answers files (for replay competitors): arena-hard model_answer, FastChat llm_judge
model_answer (`choices[0].turns`) and Vicuna-bench (`question_id, text`) formats → {instruction_id: text}."""
from __future__ import annotations

from pathlib import Path

from arena_ray.data.ingest import iter_jsonl
from arena_ray.errors import InputError


def _arena_hard_answer(record: dict, where: str) -> tuple[str, str]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError(f"{where}: field 'messages' must be a non-empty list")
    content = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    if isinstance(content, dict):
        content = content.get("answer")
    if not isinstance(content, str):
        raise InputError(f"{where}: last message has no answer text (messages[-1].content.answer)")
    return str(record["uid"]), content


def _fastchat_answer(record: dict, where: str) -> tuple[str, str]:
    try:
        text = record["choices"][0]["turns"][0]
    except (KeyError, IndexError, TypeError):
        raise InputError(f"{where}: field 'choices[0].turns[0]' missing") from None
    return str(record["question_id"]), text


def parse_answer(record: object, where: str) -> tuple[str, str]:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object")
    if "uid" in record and "messages" in record:
        return _arena_hard_answer(record, where)
    if "question_id" in record and "choices" in record:
        return _fastchat_answer(record, where)
    if "question_id" in record and "text" in record:
        return str(record["question_id"]), str(record["text"])
    raise InputError(f"{where}: unknown answer format (expected arena-hard 'uid, messages', FastChat "
                     f"'question_id, choices' or Vicuna 'question_id, text')")


def load_answers(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"answers file not found: {path}")
    answers: dict[str, str] = {}
    for where, record in iter_jsonl(path):
        key, text = parse_answer(record, where)
        answers[key] = text
    if not answers:
        raise InputError(f"answers file is empty: {path}")
    return answers
