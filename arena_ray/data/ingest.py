"""Read instruction files (arena-hard, FastChat MT-bench/Vicuna, Alpaca, ShareGPT, self-instruct, generic JSONL;
as JSONL, a JSON array, Parquet or a directory of Parquet parts) into Instructions.

Every record gets a stable id: the source's own id where it has one, else a hash of the text.
A malformed record raises InputError naming the file, the line and the field.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Iterator, Optional

from arena_ray.errors import InputError
from arena_ray.records import Instruction


def _text_id(text: str) -> str:
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:16]


def read_text(path: Path) -> str:
    """The file's text, plain or gzip (told by its magic bytes, whatever its name), as UTF-8; an InputError
    naming the file otherwise."""
    try:
        raw = path.read_bytes()
        return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None


def read_json(path: Path, expected: type = dict):
    """A JSON file's content, checked to be an object (or `expected`); an InputError naming the file otherwise."""
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
    if not isinstance(value, expected):
        raise InputError(f"{path}: expected a JSON {'object' if expected is dict else expected.__name__}, "
                         f"found {type(value).__name__}")
    return value


def iter_jsonl(path: Path, text: Optional[str] = None) -> Iterator[tuple[str, object]]:
    """(`file:line`, record) for every non-blank line; a malformed line raises InputError naming it."""
    yield from json_lines(path, (read_text(path) if text is None else text).splitlines(), 1)


def json_lines(path, lines, first_line: int) -> Iterator[tuple[str, object]]:
    """`iter_jsonl` over lines that start at line `first_line` of `path` (a piece of a file read in parts)."""
    for lineno, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}: malformed JSON line: {err.msg} (column {err.colno})") from None
        yield where, record


def json_records(path: Path, what: str = "records") -> Iterator[tuple[str, object]]:
    """(where, record) from a JSON array (the text starts with `[`) or JSON lines, either gzipped. A `.json` file
    holding one JSON object is refused as not an array."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
        yield from ((f"{path}[{i}]", item) for i, item in enumerate(items))
        return
    if path.suffix == ".json" and "\n" in text.strip():
        try:
            json.loads(text)
        except json.JSONDecodeError:
            pass  # JSON lines under a .json name
        else:
            raise InputError(f"{path}: expected a JSON array of {what} (or one per line)")
    yield from iter_jsonl(path, text)


def _parquet_records(path: Path) -> Iterator[tuple[str, object]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for truncated/corrupt files
        raise InputError(f"{path}: unreadable Parquet ({type(err).__name__}: {err})") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}[row {i}]", row


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of a directory written in parts (the pipeline's outputs, Ray Data's, Spark's), in name
    order: the order of their rows."""
    return sorted(p for p in path.iterdir() if p.suffix == ".parquet" and p.is_file() and p.name[0] not in "._")


def _records(path: Path) -> Iterator[tuple[str, object]]:
    """(where, record) from JSONL, a JSON array, Parquet or a directory of Parquet parts."""
    if path.is_dir():
        parts = parquet_parts(path)
        if not parts:
            raise InputError(f"{path}: a directory without Parquet files")
        for part in parts:
            yield from _parquet_records(part)
        return
    if not path.is_file():
        raise InputError(f"instructions file not found: {path}")
    if path.suffix == ".parquet":
        yield from _parquet_records(path)
        return
    yield from json_records(path)


def detect_format(record: dict) -> str:
    if {"instruction_id", "text", "source"} <= set(record):
        return "arena_ray"  # our own instruction tables (pipeline shards, a run's instructions.parquet)
    if "uid" in record and "prompt" in record:
        return "arena_hard"
    if "turns" in record:
        return "fastchat"
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "messages"
    if "instruction" in record and "instances" in record:
        return "self_instruct"
    if "instruction" in record and ("input" in record or "output" in record):
        return "alpaca"
    return "jsonl"


def _field(record: dict, name: str, where: str) -> object:
    if name not in record:
        raise InputError(f"{where}: missing field '{name}'")
    return record[name]


def _text(value: object, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: field '{name}' must be a non-empty string")
    return value


def _id(value: object, where: str, name: str) -> str:
    """A record id: a non-empty string or an integer (null, true or 1.5 would become 'None', 'True', '1.5')."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, str) and not value.strip()):
        raise InputError(f"{where}: field '{name}' must be a non-empty string or an integer, got {value!r}")
    return str(value)


def _optional_id(record: dict, name: str, where: str, fallback: str) -> str:
    return fallback if record.get(name) is None else _id(record[name], where, name)


def _extra(value: object, where: str, name: str) -> str:
    """An optional second part of an instruction (Alpaca/self-instruct `input`): a string or nothing."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{where}: field '{name}' must be a string, got {type(value).__name__}")
    return value


def _turns(value, where: str, name: str) -> tuple[str, ...]:
    """A non-empty list of non-empty strings (MT-bench turns and reference answers)."""
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: field '{name}' must be a non-empty list")
    return tuple(_text(v, where, f"{name}[{k}]") for k, v in enumerate(value))


def _references(value, where: str) -> tuple[str, ...]:
    """MT-bench reference answers: a list of strings, one per turn ('' where a turn has none)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: field 'reference' must be a list of strings (one per turn)")
    return tuple(value) if any(v.strip() for v in value) else ()


def parse_record(record: dict, fmt: str, where: str, source: str) -> Instruction:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object")
    if fmt == "arena_ray":
        text = _text(_field(record, "text", where), where, "text")
        return Instruction(_id(record["instruction_id"], where, "instruction_id"), text, str(record["source"]),
                           str(record.get("category") or ""))
    if fmt == "arena_hard":
        text = _text(_field(record, "prompt", where), where, "prompt")
        return Instruction(_id(_field(record, "uid", where), where, "uid"), text, source, str(record.get("cluster", "")))
    if fmt == "fastchat":
        turns = _turns(_field(record, "turns", where), where, "turns")
        references = _references(record.get("reference"), where)
        if len(references) > len(turns):
            raise InputError(f"{where}: field 'reference' has {len(references)} answers for {len(turns)} turns")
        return Instruction(_id(_field(record, "question_id", where), where, "question_id"), turns[0], source,
                           str(record.get("category", "")), turns[1:], references)
    if fmt == "sharegpt":
        return _sharegpt(record, where, source)
    if fmt == "messages":
        return _chat_messages(record, where, source)
    if fmt == "self_instruct":
        text = _text(_field(record, "instruction", where), where, "instruction")
        instances = record.get("instances") or [{}]
        extra = _extra(instances[0].get("input"), where, "instances[0].input") if isinstance(instances[0], dict) else ""
        full = f"{text}\n\n{extra}" if extra.strip() else text
        return Instruction(_optional_id(record, "id", where, _text_id(full)), full, source)
    if fmt == "alpaca":
        text = _text(_field(record, "instruction", where), where, "instruction")
        extra = _extra(record.get("input"), where, "input")
        full = f"{text}\n\n{extra}" if extra.strip() else text
        return Instruction(_text_id(full), full, source)
    for name in ("instruction", "prompt", "text", "question"):
        if name in record:
            text = _text(record[name], where, name)
            key = "id" if record.get("id") is not None else "instruction_id"
            return Instruction(_optional_id(record, key, where, _text_id(text)), text, source)
    raise InputError(f"{where}: no instruction field (expected one of instruction, prompt, text, question)")


def _chat_messages(record: dict, where: str, source: str) -> Instruction:
    """Hugging Face chat datasets (`messages: [{role, content}, …]`, e.g. UltraChat, TRL's SFT data): the first
    user turn is the instruction, as for ShareGPT."""
    messages = _field(record, "messages", where)
    if not isinstance(messages, list):
        raise InputError(f"{where}: field 'messages' must be a list of {{role, content}}")
    for k, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            text = _text(m.get("content"), where, f"messages[{k}].content")
            key = "id" if record.get("id") is not None else "prompt_id"
            return Instruction(_optional_id(record, key, where, _text_id(text)), text, source)
    raise InputError(f"{where}: field 'messages' has no user turn")


def _sharegpt(record: dict, where: str, source: str) -> Instruction:
    """ShareGPT: the first human turn of `conversations` ({"from": "human"|"gpt", "value": ...})."""
    turns = _field(record, "conversations", where)
    if not isinstance(turns, list):
        raise InputError(f"{where}: field 'conversations' must be a list")
    for k, turn in enumerate(turns):
        if isinstance(turn, dict) and turn.get("from") in ("human", "user"):
            text = _text(turn.get("value"), where, f"conversations[{k}].value")
            return Instruction(_optional_id(record, "id", where, _text_id(text)), text, source)
    raise InputError(f"{where}: field 'conversations' has no human turn")


def iter_instructions(path: str | Path, fmt: str = "auto") -> Iterator[tuple[str, Instruction]]:
    """(where, Instruction) for every record of a file, in file order (no dedup, no limits)."""
    path = Path(path)
    for where, record in _records(path):
        record_fmt = detect_format(record) if fmt == "auto" and isinstance(record, dict) else fmt
        yield where, parse_record(record, record_fmt, where, path.name)


def claim_id(seen: dict[str, str], inst: Instruction, where: str, hint: str = "") -> None:
    """Record where an instruction id first appeared; a second use raises InputError naming both places."""
    if inst.instruction_id in seen:
        raise InputError(f"{where}: duplicate instruction id '{inst.instruction_id}' "
                         f"(first at {seen[inst.instruction_id]}){hint}")
    seen[inst.instruction_id] = where


def load_instructions(path: str | Path, fmt: str = "auto", offset: int = 0,
                      limit: Optional[int] = None) -> list[Instruction]:
    path = Path(path)
    out: list[Instruction] = []
    seen: dict[str, str] = {}
    for index, (where, inst) in enumerate(iter_instructions(path, fmt)):
        if index < offset:
            continue
        if limit is not None and len(out) >= limit:
            break
        claim_id(seen, inst, where)
        out.append(inst)
    if not out:
        raise InputError(f"{path}: no instructions (offset={offset}, limit={limit})")
    return out
