"""Parquet tables with declared Arrow schemas: atomic writes and checked reads. The ground under the ledger,
the data pipeline, the flywheel and the test sets alike."""
from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from arena_ray.errors import InputError


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write to a temporary file beside `path`, fsync, rename: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """A text file written beside itself and renamed into place: a reader never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_table(path: Path, schema: pa.Schema, columns: Optional[Sequence[str]] = None, hint: str = "",
               optional: Optional[Mapping[str, object]] = None) -> pa.Table:
    """The file's rows as `schema` (or just `columns` of it); an InputError naming the file when it is unreadable
    or lacks a column. `optional`: columns a file may lack (written before they existed), read as the value
    given."""
    names = list(columns or schema.names)
    optional = optional or {}
    try:
        present = pq.read_schema(path).names
        absent = [n for n in names if n not in present]
        missing = set(absent) - set(optional)
        table = None if missing else pq.read_table(path, columns=[n for n in names if n in present])
    except Exception as err:  # pyarrow raises several types for truncated/corrupt files
        raise InputError(f"{path} is unreadable ({type(err).__name__}: {err}){hint}") from None
    if missing:
        raise InputError(f"{path} lacks columns {sorted(missing)}{hint}")
    for name in absent:
        table = table.append_column(schema.field(name), pa.array([optional[name]] * len(table), schema.field(name).type))
    try:
        return table.select(names).cast(pa.schema([schema.field(n) for n in names]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise InputError(f"{path}: a column has the wrong type ({err}){hint}") from None


def finite(value):
    """`value` with every NaN or infinity replaced by None: JSON has no such numbers, and a reader given a bare
    NaN (Python's default) fails or guesses."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_text(value, **kwargs) -> str:
    """json.dumps of what the project writes to disk: always valid JSON (non-finite numbers become null)."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
