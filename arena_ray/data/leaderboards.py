"""Leaderboard files to compare against: ours (leaderboard.json), Chatbot Arena CSV (`model, arena_score,
95_pct_ci` like "+5/-5"), arena-hard CSV (`model, score, rating_q025, rating_q975`)."""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from pathlib import Path
from typing import Optional

from arena_ray.data.ingest import read_json, read_text
from arena_ray.errors import InputError
from arena_ray.records import BoardEntry

log = logging.getLogger(__name__)

_PLUS_MINUS = re.compile(r"^\s*\+\s*([\d.]+)\s*/\s*-\s*([\d.]+)\s*$")


def _float(value, where: str, name: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number):
        raise InputError(f"{where}: field '{name}' is not a finite number: {value!r}")
    return number


def _optional(value, where: str, name: str) -> Optional[float]:
    return None if value is None else _float(value, where, name)


def _csv(path: Path) -> dict[str, BoardEntry]:
    out = {}
    reader = csv.DictReader(io.StringIO(read_text(path).removeprefix("\ufeff"), newline=""))
    if "model" not in (reader.fieldnames or []):
        raise InputError(f"{path}: no 'model' column (columns: {reader.fieldnames})")
    for lineno, row in enumerate(reader, 2):
        where = f"{path}:{lineno}"
        if "arena_score" in row:
            score = _float(row["arena_score"], where, "arena_score")
            ci = _PLUS_MINUS.match(row.get("95_pct_ci") or "")
            entry = BoardEntry(score, score - float(ci.group(2)), score + float(ci.group(1))) if ci else BoardEntry(score)
        elif "score" in row:
            entry = BoardEntry(_float(row["score"], where, "score"),
                          _float(row["rating_q025"], where, "rating_q025") if row.get("rating_q025") else None,
                          _float(row["rating_q975"], where, "rating_q975") if row.get("rating_q975") else None)
        else:
            raise InputError(f"{path}: unknown CSV columns {list(row)} (need arena_score or score)")
        if row["model"] in out and out[row["model"]] != entry:
            raise InputError(f"{where}: model '{row['model']}' appears twice with different ratings")
        out[row["model"]] = entry  # an identical repeated row (the 2025-08-06 file has one) counts once
    return out


def load_board(path: str | Path) -> dict[str, BoardEntry]:
    path = Path(path)
    if path.is_dir():
        path = path / "leaderboard.json"
    if not path.is_file():
        raise InputError(f"leaderboard file not found: {path}")
    if path.suffix == ".csv":
        board = _csv(path)
    else:
        board = _json_board(path)
    if not board:
        raise InputError(f"{path}: no models")
    return board


def read_board(path: Path) -> dict:
    """leaderboard.json as written by `arena`/`rate`, its `models` checked: each entry's rating and interval ends
    finite numbers or null (null: a separated model, or an open interval end)."""
    doc = read_json(path)
    models = doc.get("models")
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise InputError(f"{path}: not a leaderboard.json ('models' must map each model name to its entry)")
    for name, v in models.items():
        for key in ("rating", "ci_low", "ci_high"):
            value = v.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InputError(f"{path}: models.{name}: field '{key}' is not a number: {value!r}")
            _optional(value, f"{path}: models.{name}", key)
    return doc


def _json_board(path: Path) -> dict[str, BoardEntry]:
    board, unrated = {}, []
    for name, v in read_board(path)["models"].items():
        if v.get("rating") is None:  # separated (no finite rating): no rating to compare
            unrated.append(name)
            continue
        board[name] = BoardEntry(float(v["rating"]), v.get("ci_low"), v.get("ci_high"))
    if unrated:
        log.warning("%s: left out of the comparison, no finite rating: %s", path, ", ".join(unrated))
    return board


def load_names(names_file: str | Path) -> dict[str, Optional[str]]:
    """A JSON object {our_name: reference_name}, null for a model known to be absent from the reference (it is
    listed as unmatched, on purpose); anything else is an error naming the file."""
    path = Path(names_file)
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"names file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, (str, type(None))) for v in mapping.values()):
        raise InputError(f"{path}: expected a JSON object of names, {{\"our name\": \"reference name\"}}")
    return mapping


def rename(board: dict[str, BoardEntry], names_file: str | Path | None) -> dict[str, BoardEntry]:
    """Map our names to the reference's with a JSON {our_name: reference_name}; nothing is guessed. Two of our
    models mapped to one reference name is an error (one of them would silently vanish)."""
    if not names_file:
        return board
    mapping = load_names(names_file)
    out: dict[str, BoardEntry] = {}
    origin: dict[str, str] = {}
    for name, entry in board.items():
        target = mapping.get(name, name) or name
        if target in out:
            raise InputError(f"{names_file}: '{origin[target]}' and '{name}' both become '{target}'")
        out[target], origin[target] = entry, name
    return out
