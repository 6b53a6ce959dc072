"""The battle ledger: append-only Parquet in a run directory, the source of truth for resuming.

Each flush writes a new part file atomically (temp file, fsync, rename), so a killed process leaves only
whole parts behind. Readers merge the consolidated file with all parts and drop repeated keys, so a crash
between consolidation and part removal duplicates nothing. Rows are never rewritten or dropped.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from arena_ray.arena.progress import LedgerIndex
from arena_ray.errors import InputError
from arena_ray.records import (
    GENERATION_SCHEMA,
    INSTRUCTION_SCHEMA,
    JUDGMENT_OPTIONAL,
    JUDGMENT_SCHEMA,
    OPTIONAL_COLUMNS,
    Generation,
    Instruction,
    Judgment,
    from_table,
    to_table,
)
from arena_ray.records.tables import read_table, write_atomic

_TABLES = {
    "generations": (Generation, GENERATION_SCHEMA),
    "judgments": (Judgment, JUDGMENT_SCHEMA),
}


def generation_key(g: Generation) -> tuple:
    return (g.instruction_id, g.model)


def judgment_key(j: Judgment) -> tuple:
    return (j.battle_id, j.judge, j.position, j.attempt)   # the judge: each member of a panel judges every game


_KEYS = {"generations": generation_key, "judgments": judgment_key}
_OPTIONAL = {"judgments": JUDGMENT_OPTIONAL}


_HINT = "; move it aside to resume without it"


def save_instructions(run_dir: Path, instructions: Iterable[Instruction]) -> None:
    """instructions.parquet: every prompt the run battled on (kept across resumes that add more)."""
    path = Path(run_dir) / "instructions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    known = {i.instruction_id: i for i in (_read_instructions(path) if path.exists() else [])}
    new = [i for i in instructions if i.instruction_id not in known]
    if new or not path.exists():
        write_atomic(to_table(list(known.values()) + new, Instruction), path)


def load_instructions_of(run_dir: Path) -> dict[str, Instruction]:
    path = Path(run_dir) / "instructions.parquet"
    if not path.exists():
        raise InputError(f"{path} not found: not an arena run directory")
    return {i.instruction_id: i for i in _read_instructions(path)}


def _read_instructions(path: Path) -> list[Instruction]:
    # Runs from before multi-turn battles have no turns / references columns: single-turn instructions.
    return from_table(read_table(path, INSTRUCTION_SCHEMA, hint=_HINT, optional=OPTIONAL_COLUMNS), Instruction)


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

    def _files(self, name: str, parts: list[Path]) -> list[Path]:
        return ([self._consolidated(name)] if self._consolidated(name).exists() else []) + parts

    def scan(self, name: str, columns: Sequence[str]) -> Iterator[pa.Table]:
        """Some columns of every file, one table per file, repeats not removed: for indexes that must not
        hold every answer and verdict text in memory (a resumed 100k-battle run)."""
        for path in self._files(name, self._parts(name)):
            yield read_table(path, _TABLES[name][1], columns, hint=_HINT)

    def _read_all(self, name: str, instruction_ids: Optional[set[str]] = None) -> tuple[list, list[Path]]:
        """Every record once (first copy wins), or only those of `instruction_ids`; and the parts read."""
        record_type, schema = _TABLES[name]
        parts = self._parts(name)
        wanted = pa.array(sorted(instruction_ids)) if instruction_ids is not None else None
        key = _KEYS[name]
        seen: set = set()
        out = []
        for path in self._files(name, parts):
            table = read_table(path, schema, hint=_HINT, optional=_OPTIONAL.get(name))
            if wanted is not None:
                table = table.filter(pc.is_in(table["instruction_id"], value_set=wanted))
            for record in from_table(table, record_type):
                k = key(record)
                if k not in seen:
                    seen.add(k)
                    out.append(record)
        return out, parts

    def generations(self) -> list[Generation]:
        return self._read_all("generations")[0]

    def generations_of(self, instruction_ids: set[str]) -> list[Generation]:
        """Recorded answers to these instructions only: a resume reloads the answers still to be judged."""
        return self._read_all("generations", instruction_ids)[0] if instruction_ids else []

    def judgments(self) -> list[Judgment]:
        return self._read_all("judgments")[0]

    def index(self, judges: tuple[str, ...] = ()) -> LedgerIndex:
        """What is recorded, read column-wise without any answer or verdict text (see LedgerIndex); `judges`: a
        panel's members."""
        index = LedgerIndex(judges=judges)
        for t in self.scan("generations", ["instruction_id", "model", "error"]):
            index.add_answers(t["instruction_id"].to_pylist(), t["model"].to_pylist(), t["error"].to_pylist())
        for t in self.scan("judgments", ["battle_id", "position", "attempt", "parse_ok", "judge"]):
            index.add_games(t["battle_id"].to_pylist(), t["position"].to_pylist(), t["attempt"].to_pylist(),
                            t["parse_ok"].to_pylist(), t["judge"].to_pylist() if judges else None)
        return index

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
