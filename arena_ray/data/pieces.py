"""Instruction sources cut into pieces that tasks read in parallel: a whole file, a byte range of JSON lines, or
a slice of a Parquet row group. Pure (no ray): the pipeline's shell maps over pieces.

A piece knows the index of its first record in its source — the source's `limit` counts records, and (source,
index) is the table's order — and, for JSON lines, the number of its first line, so every record is named
`file:line` or `file[row i]` exactly as the whole-file readers in ingest.py name it. Anything unusual (missing,
gzip, a JSON array, a `.json` name, an unreadable footer, a small file) stays one whole-file piece read by those
readers, so their errors are the errors.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator, Optional

from arena_ray.data.ingest import detect_format, iter_instructions, json_lines, parquet_parts, parse_record
from arena_ray.errors import InputError
from arena_ray.records import Instruction

PIECE_BYTES = 4 << 20        # JSON lines: a piece is about this many bytes (~10k instructions)
PIECE_ROWS = 20_000          # Parquet: a row group longer than this is read in slices of it
SOURCE_SPAN = 1 << 40        # order = source index * SOURCE_SPAN + record index


@dataclass(frozen=True)
class Piece:
    source: int                   # index of the source in the job
    path: str                     # the file read (of a directory source: the part)
    name: str                     # the source's file name: its records' `source`
    fmt: str = "auto"
    id_prefix: str = ""
    limit: Optional[int] = None   # records of the source kept; None: all
    kind: str = "file"            # file | lines | rows
    start: int = 0                # lines: first byte; rows: row group
    stop: int = 0                 # lines: end byte; rows: rows in the slice (0: to the group's end)
    offset: int = 0               # rows: first row of the slice within its group
    first_line: int = 1           # lines: number of the first line in the file
    first_row: int = 0            # rows: index of the slice's first row in its file
    first_record: int = 0         # index of the first record in the source

    def order(self, index: int) -> int:
        """The table position of this source's record `index` (-1: before its first record)."""
        return self.source * SOURCE_SPAN + index

    def as_row(self) -> dict:
        return {**asdict(self), "limit": -1 if self.limit is None else self.limit}

    @classmethod
    def from_row(cls, row: dict) -> "Piece":
        known = {k: row[k] for k in cls.__dataclass_fields__}
        return cls(**{**known, "limit": None if known["limit"] < 0 else known["limit"]})


def plan(source: int, path: str, fmt: str = "auto", id_prefix: str = "", limit: Optional[int] = None,
         piece_bytes: Optional[int] = None, piece_rows: Optional[int] = None) -> list[Piece]:
    """The pieces of one source, from its size, first bytes and Parquet footers only. JSON-lines pieces still
    need their first line and record (`number`)."""
    # The module's sizes read at call time, not bound as defaults: a test shrinks them for the whole pipeline.
    piece_bytes, piece_rows = piece_bytes or PIECE_BYTES, piece_rows or PIECE_ROWS
    p = Path(path)
    whole = Piece(source, str(p), p.name, fmt, id_prefix, limit)
    try:
        if p.is_dir() or p.suffix == ".parquet":
            return _row_pieces(whole, parquet_parts(p) if p.is_dir() else [p], piece_rows) or [whole]
        if p.is_file() and p.suffix != ".json" and p.stat().st_size > piece_bytes:
            return _line_pieces(whole, piece_bytes)
    except Exception:   # an unreadable footer or file: the whole-file reader names what is wrong
        pass
    return [whole]


def _row_pieces(whole: Piece, files: list[Path], piece_rows: int) -> list[Piece]:
    import pyarrow.parquet as pq

    pieces, first = [], 0
    for f in files:
        meta, row = pq.read_metadata(f), 0
        for g in range(meta.num_row_groups):
            rows = meta.row_group(g).num_rows
            for offset in range(0, rows, piece_rows):
                if whole.limit is not None and first > whole.limit:
                    return pieces
                n = min(piece_rows, rows - offset)
                pieces.append(replace(whole, path=str(f), kind="rows", start=g, offset=offset, stop=n,
                                      first_row=row + offset, first_record=first))
                first += n
            row += rows
    return pieces


def _line_pieces(whole: Piece, piece_bytes: int) -> list[Piece]:
    """Byte ranges that start at line starts. A gzip file or a JSON array (its text starts with `[`, as
    json_records tells them) stays whole."""
    size = Path(whole.path).stat().st_size
    with open(whole.path, "rb") as fh:
        head = fh.read(1 << 16)
        if head[:2] == b"\x1f\x8b" or head.decode("utf-8", "ignore").lstrip()[:1] in ("[", ""):
            return [whole]
        cuts = [0]
        while cuts[-1] + piece_bytes < size:
            fh.seek(cuts[-1] + piece_bytes)
            cut = _next_line(fh, size)
            if cut >= size:
                break
            cuts.append(cut)
    return [replace(whole, kind="lines", start=a, stop=b) for a, b in zip(cuts, cuts[1:] + [size])]


def _next_line(fh, size: int) -> int:
    while chunk := fh.read(1 << 16):
        nl = chunk.find(b"\n")
        if nl >= 0:
            return fh.tell() - len(chunk) + nl + 1
    return size


def read_lines(piece: Piece) -> list[str]:
    """A JSON-lines piece's lines, split as ingest.iter_jsonl splits the whole text; a file-level InputError
    (unreadable, not UTF-8 — at its byte in the whole file) otherwise."""
    try:
        with open(piece.path, "rb") as fh:
            fh.seek(piece.start)
            raw = fh.read(piece.stop - piece.start)
    except OSError as err:
        raise InputError(f"{piece.path}: unreadable ({type(err).__name__}: {err})") from None
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"{piece.path}: not UTF-8 text (byte {piece.start + err.start})") from None


def count(piece: Piece) -> tuple[int, int, Optional[str]]:
    """(lines, records, file-level error) of a JSON-lines piece: what the pieces after it need to number
    theirs."""
    try:
        lines = read_lines(piece)
    except InputError as err:
        return 0, 0, str(err)
    return len(lines), sum(1 for line in lines if line.strip()), None


def number(pieces: list[Piece], counts: list[tuple[int, int]]) -> list[Piece]:
    """One source's JSON-lines pieces with their first line and record set from the counts of those before
    them; pieces wholly past the source's limit are dropped."""
    out, line, record = [], 1, 0
    for piece, (lines, records) in zip(pieces, counts):
        if piece.limit is not None and record > piece.limit:
            break
        out.append(replace(piece, first_line=line, first_record=record))
        line, record = line + lines, record + records
    return out


def records(piece: Piece) -> Iterator[tuple[int, str, Instruction]]:
    """(index in the source, where, Instruction with the source's id prefix) of the piece's records, up to the
    source's limit. File-level problems raise here, at once; a bad record raises while iterating. As the
    sequential ingest always did, the record at index `limit` is still parsed (its error is reported) but
    not kept."""
    if piece.kind == "lines":
        return _kept(piece, _line_records(piece, read_lines(piece)))
    if piece.kind == "rows":
        return _kept(piece, _row_records(piece, _read_rows(piece)))
    return _kept(piece, iter_instructions(piece.path, piece.fmt))


def _kept(piece: Piece, parsed: Iterator[tuple[str, Instruction]]) -> Iterator[tuple[int, str, Instruction]]:
    for k, (where, inst) in enumerate(parsed):
        index = piece.first_record + k
        if piece.limit is not None and index >= piece.limit:
            return
        yield index, where, Instruction(piece.id_prefix + inst.instruction_id, inst.text, inst.source,
                                        inst.category)


def _parse(record, fmt: str, where: str, source: str) -> Instruction:
    record_fmt = detect_format(record) if fmt == "auto" and isinstance(record, dict) else fmt
    return parse_record(record, record_fmt, where, source)


def _line_records(piece: Piece, lines: list[str]) -> Iterator[tuple[str, Instruction]]:
    for where, record in json_lines(piece.path, lines, piece.first_line):
        yield where, _parse(record, piece.fmt, where, piece.name)


def _read_rows(piece: Piece) -> list:
    import pyarrow.parquet as pq

    try:
        group = pq.ParquetFile(piece.path).read_row_group(piece.start)
    except Exception as err:  # pyarrow raises several types for truncated/corrupt files
        raise InputError(f"{piece.path}: unreadable Parquet ({type(err).__name__}: {err})") from None
    return group.slice(piece.offset, piece.stop or None).to_pylist()


def _row_records(piece: Piece, rows: list) -> Iterator[tuple[str, Instruction]]:
    for i, row in enumerate(rows):
        where = f"{piece.path}[row {piece.first_row + i}]"
        yield where, _parse(row, piece.fmt, where, piece.name)
