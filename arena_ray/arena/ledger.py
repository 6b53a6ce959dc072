"""The battle ledger: append-only Parquet in a run directory, the source of truth for resuming.

Each flush writes a new part file atomically (temp file, fsync, rename), so a killed process leaves only
whole parts behind. Readers merge the consolidated file with all parts and drop repeated keys, so a crash
between consolidation and part removal duplicates nothing. Rows are never rewritten or dropped.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from arena_ray.records import (
    GENERATION_SCHEMA,
    INSTRUCTION_SCHEMA,
    JUDGMENT_SCHEMA,
    Generation,
    Instruction,
    Judgment,
    from_table,
    to_table,
)


class LedgerError(RuntimeError):
    """A ledger file is unreadable; the message names it. Nothing is deleted or rewritten."""


_TABLES = {
    "generations": (Generation, GENERATION_SCHEMA),
    "judgments": (Judgment, JUDGMENT_SCHEMA),
}


def generation_key(g: Generation) -> tuple:
    return (g.instruction_id, g.model)


def judgment_key(j: Judgment) -> tuple:
    return (j.battle_id, j.position, j.attempt)


_KEYS = {"generations": generation_key, "judgments": judgment_key}


def write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_table(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for truncated/corrupt files
        raise LedgerError(f"ledger file {path} is unreadable ({type(err).__name__}: {err}); "
                          f"move it aside to resume without it") from None
    missing = set(schema.names) - set(table.column_names)
    if missing:
        raise LedgerError(f"ledger file {path} lacks columns {sorted(missing)}")
    return table.select(schema.names).cast(schema)


def save_instructions(run_dir: Path, instructions: Iterable[Instruction]) -> None:
    """instructions.parquet: every prompt the run battled on (kept across resumes that add more)."""
    path = Path(run_dir) / "instructions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    known = {i.instruction_id: i for i in (from_table(read_table(path, INSTRUCTION_SCHEMA), Instruction)
                                           if path.exists() else [])}
    new = [i for i in instructions if i.instruction_id not in known]
    if new or not path.exists():
        write_atomic(to_table(list(known.values()) + new, Instruction), path)


def load_instructions_of(run_dir: Path) -> dict[str, Instruction]:
    path = Path(run_dir) / "instructions.parquet"
    if not path.exists():
        raise LedgerError(f"{path} not found: not an arena run directory")
    return {i.instruction_id: i for i in from_table(read_table(path, INSTRUCTION_SCHEMA), Instruction)}


class Ledger:
    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        for name in _TABLES:
            (self.run_dir / "ledger" / name).mkdir(parents=True, exist_ok=True)

    def _parts(self, name: str) -> list[Path]:
        return sorted((self.run_dir / "ledger" / name).glob("part-*.parquet"))

    def _consolidated(self, name: str) -> Path:
        return self.run_dir / f"{name}.parquet"

    def append(self, name: str, records: Iterable) -> Optional[Path]:
        records = list(records)
        if not records:
            return None
        record_type, _ = _TABLES[name]
        path = self.run_dir / "ledger" / name / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        write_atomic(to_table(records, record_type), path)
        return path

    def append_generations(self, records: Iterable[Generation]) -> None:
        self.append("generations", records)

    def append_judgments(self, records: Iterable[Judgment]) -> None:
        self.append("judgments", records)

    def _read_all(self, name: str) -> tuple[list, list[Path]]:
        record_type, schema = _TABLES[name]
        parts = self._parts(name)
        files = ([self._consolidated(name)] if self._consolidated(name).exists() else []) + parts
        key = _KEYS[name]
        seen: set = set()
        out = []
        for path in files:
            for record in from_table(read_table(path, schema), record_type):
                k = key(record)
                if k not in seen:
                    seen.add(k)
                    out.append(record)
        return out, parts

    def generations(self) -> list[Generation]:
        return self._read_all("generations")[0]

    def judgments(self) -> list[Judgment]:
        return self._read_all("judgments")[0]

    def consolidate(self) -> None:
        """Fold the parts into `<name>.parquet` (atomically), then remove the folded parts."""
        for name, (record_type, _) in _TABLES.items():
            records, parts = self._read_all(name)
            if not parts and self._consolidated(name).exists():
                continue
            write_atomic(to_table(records, record_type), self._consolidated(name))
            for part in parts:
                part.unlink()
        for stale in (self.run_dir / "ledger").glob("*/*.tmp"):
            stale.unlink()
