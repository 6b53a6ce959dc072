"""Human-labelled preference pairs, for judge cards and the self-reward judge's agreement: the generic JSONL
(`id, question, answer_a, answer_b, winner`), PandaLM's test set (`annotator1..3` with 0 = tie, 1 = response1
better, 2 = response2 better; the label is the annotators' majority), LLMBar / FairEval and HH-RLHF. A
malformed record is an InputError naming the file, the record and the field."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.errors import InputError
from arena_ray.records import HumanPair


def majority(labels: Sequence[int]) -> Optional[int]:
    value, count = Counter(labels).most_common(1)[0]
    return value if count * 2 > len(labels) else None


def load_pandalm(path: str | Path, offset: int = 0, limit: Optional[int] = None) -> list[HumanPair]:
    """Records [offset, offset+limit) with a majority label; a malformed record is named by index and field."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of records")
    out: list[HumanPair] = []
    for i, rec in enumerate(records[offset:offset + limit if limit else None], start=offset):
        where = f"{path}[{i}]"
        for key in ("instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"):
            if key not in rec:
                raise InputError(f"{where}: missing field '{key}'")
        labels = [rec[f"annotator{k}"] for k in (1, 2, 3)]
        if any(v not in (0, 1, 2) for v in labels):
            raise InputError(f"{where}: annotator labels must be 0, 1 or 2, got {labels}")
        label = majority(labels)
        if label is None:
            continue
        text = rec["instruction"] + (f"\n\n{rec['input']}" if rec.get("input") else "")
        out.append(HumanPair(str(rec.get("idx", i)), text, rec["response1"], rec["response2"],
                             {0: 0, 1: 1, 2: -1}[label]))
    return out


def _require(rec: dict, where: str, keys: Sequence[str]) -> None:
    for key in keys:
        if key not in rec:
            raise InputError(f"{where}: missing field '{key}'")


def _llmbar(records: list, path: Path, start: int = 0) -> list[HumanPair]:
    """LLMBar / FairEval: `input, output_1, output_2, label` (1 or 2)."""
    out = []
    for i, rec in enumerate(records, start):
        where = f"{path}[{i}]"
        _require(rec, where, ("input", "output_1", "output_2", "label"))
        if rec["label"] not in (1, 2):
            raise InputError(f"{where}: field 'label' must be 1 or 2, got {rec['label']!r}")
        out.append(HumanPair(f"{path.stem}:{i}", _text(rec["input"], where, "input"),
                             _text(rec["output_1"], where, "output_1"), _text(rec["output_2"], where, "output_2"),
                             1 if rec["label"] == 1 else -1))
    return out


def _generic(records: list, path: Path, start: int = 0) -> list[HumanPair]:
    """The generic form: `id, question, answer_a, answer_b, winner` (a | b | tie); without an id, the file's stem
    and the record's index."""
    out = []
    for i, rec in enumerate(records, start):
        where = f"{path}[{i}]"
        _require(rec, where, ("question", "answer_a", "answer_b", "winner"))
        label = {"a": 1, "b": -1, "tie": 0}.get(rec["winner"])
        if label is None:
            raise InputError(f"{where}: field 'winner' must be a, b or tie, got {rec['winner']!r}")
        out.append(HumanPair(str(rec["id"]) if "id" in rec else f"{path.stem}:{i}", _text(rec["question"], where, "question"),
                             _text(rec["answer_a"], where, "answer_a"), _text(rec["answer_b"], where, "answer_b"),
                             label))
    return out


def _hh_rlhf(records: list, path: Path, start: int = 0) -> list[HumanPair]:
    """Anthropic HH-RLHF: `chosen, rejected`, two whole dialogues that differ in the last assistant turn. The
    question is the dialogue before it; which answer is shown as a is decided by the record's index (half each),
    so a judge's position bias cannot pass for agreement."""
    out = []
    for i, rec in enumerate(records, start):
        where = f"{path}[{i}]"
        parts = []
        for key in ("chosen", "rejected"):
            text = _text(rec.get(key), where, key)
            head, sep, answer = text.rpartition("\n\nAssistant:")
            if not sep:
                raise InputError(f"{where}: field '{key}' has no '\\n\\nAssistant:' turn")
            parts.append((head.strip(), answer.strip()))
        (question, chosen), (_, rejected) = parts
        if not chosen or not rejected or chosen == rejected:
            continue  # nothing to prefer
        a, b, label = (chosen, rejected, 1) if i % 2 == 0 else (rejected, chosen, -1)
        out.append(HumanPair(f"{path.stem}:{i}", question, a, b, label))
    return out


def _text(value, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: field '{name}' must be a non-empty string")
    return value


def _records(path: Path) -> list:
    from arena_ray.data.ingest import iter_jsonl

    if not path.is_file():
        raise InputError(f"human-labelled pairs not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON ({err})") from None
    else:
        records = [r for _, r in iter_jsonl(path)]
    if not records or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{path}: expected records (JSON objects)")
    return records


def load_pairs(path: str | Path, offset: int = 0, limit: Optional[int] = None) -> list[HumanPair]:
    """Human-labelled pairs from any supported file, told apart by their fields: the generic JSONL
    (`id, question, answer_a, answer_b, winner`), PandaLM, LLMBar / FairEval and HH-RLHF. Ids are the generic
    records' own, else the file's stem and the record's index; `offset` / `limit` select records in file
    order."""
    path = Path(path)
    records = _records(path)
    keys = set(records[0])
    if {"annotator1", "response1"} <= keys:
        return load_pandalm(path, offset, limit)
    for needed, reader in (({"answer_a", "answer_b", "winner"}, _generic), ({"output_1", "output_2", "label"}, _llmbar),
                           ({"chosen", "rejected"}, _hh_rlhf)):
        if needed <= keys:
            return reader(records[offset:offset + limit if limit else None], path, offset)
    raise InputError(f"{path}: unknown human-labelled format (fields {sorted(keys)[:8]}; expected id, question, "
                     f"answer_a, answer_b, winner — or PandaLM, LLMBar/FairEval, HH-RLHF)")


SHIPPED = Path(__file__).parent / "human" / "llmbar_natural_24.jsonl"


def load_card_pairs(paths: Optional[Sequence[str]], limit: Optional[int] = None) -> list[HumanPair]:
    """The pairs of a judge card: every file's (the first `limit` of each), or the shipped set; ids unique."""
    pairs, seen = [], {}
    for path in paths or [SHIPPED]:
        for p in load_pairs(path, 0, limit):
            if p.pair_id in seen:
                raise InputError(f"{path}: pair id '{p.pair_id}' also in {seen[p.pair_id]}")
            seen[p.pair_id] = path
            pairs.append(p)
    return pairs
