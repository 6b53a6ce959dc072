"""Where a command may write: checked before anything is read or computed, so a bad output path is one line
naming the option, never a traceback half-way, and no input is overwritten by its own output."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from arena_ray.errors import ConfigError


def _under_a_file(path: Path) -> Optional[Path]:
    for parent in path.absolute().parents:
        if parent.exists():
            return parent if not parent.is_dir() else None
    return None


def _resolved(paths: Iterable) -> list[Path]:
    return [Path(p).resolve() for p in paths if p is not None]


def output_dir(path, inputs: Iterable = (), name: str = "--out") -> Path:
    """A directory to write into: not a file, not under a file, not one of the inputs and holding none of them
    (a run directory rated into itself would lose its own leaderboard)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{name} {out}: exists and is a file, not a directory")
    blocker = _under_a_file(out)
    if blocker is not None:
        raise ConfigError(f"{name} {out}: {blocker} is a file, not a directory")
    target = out.resolve()
    for source in _resolved(inputs):
        if source == target or target in source.parents:
            raise ConfigError(f"{name} {out}: would write into the input {source}; choose another directory")
    return out


def output_file(path, inputs: Iterable = (), name: str = "--out", own: Iterable[str] = ()) -> Path:
    """A file to write: not a directory, not under a file, not an input file, and not an existing file inside
    an input directory (except the names in `own`, the command's own earlier output)."""
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{name} {out}: is a directory; name the file to write")
    blocker = _under_a_file(out)
    if blocker is not None:
        raise ConfigError(f"{name} {out}: {blocker} is a file, not a directory")
    target, own = out.resolve(), set(own)
    for source in _resolved(inputs):
        inside = source.is_dir() and source in target.parents and out.exists() and out.name not in own
        if source == target or inside:
            raise ConfigError(f"{name} {out}: would overwrite the input {source if source == target else out}; "
                              "choose another file")
    return out
