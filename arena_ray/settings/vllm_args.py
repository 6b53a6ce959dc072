"""The installed vLLM's engine argument names, read from its source without importing it, so that a config's
vLLM engine arguments are checked when it is loaded rather than when a replica starts.

Importing vllm takes seconds (8–10 s on the CPU machines); parsing `vllm/engine/arg_utils.py` takes about
50 ms, once per process. The names are the fields of the `AsyncEngineArgs` dataclass (the engine builds
`AsyncEngineArgs(**kwargs)`), its `EngineArgs` base included, as `dataclasses.fields` lists them.
"""
from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import logging
from pathlib import Path
from typing import Iterable, Optional

log = logging.getLogger(__name__)

ENGINE_ARGS_CLASS = "AsyncEngineArgs"


def _is_dataclass(node: ast.ClassDef) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "dataclass":
            return True
    return False


def _is_field(stmt: ast.stmt) -> bool:
    """An annotated class attribute that is an __init__ argument (not a ClassVar, not field(init=False))."""
    if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
        return False
    if "ClassVar" in ast.unparse(stmt.annotation):
        return False
    if isinstance(stmt.value, ast.Call):
        for kw in stmt.value.keywords:
            if kw.arg == "init" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                return False
    return True


def dataclass_fields(source: str, class_name: str) -> Optional[frozenset[str]]:
    """The __init__ fields of a dataclass defined at the top of `source`, with those of its bases defined in the
    same module; None when the class is not there or is not a dataclass."""
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}

    def fields(name: str, seen: tuple[str, ...]) -> Optional[set[str]]:
        node = classes.get(name)
        if node is None or not _is_dataclass(node) or name in seen:
            return None
        out: set[str] = set()
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                inherited = fields(base.id, seen + (name,))
                if inherited is None:
                    return None
                out |= inherited
        out |= {stmt.target.id for stmt in node.body if _is_field(stmt)}
        return out

    found = fields(class_name, ())
    return frozenset(found) if found else None


def arg_utils_path() -> Optional[Path]:
    """vllm/engine/arg_utils.py of the installed vLLM, found without importing vllm; None if not installed."""
    try:
        spec = importlib.util.find_spec("vllm")  # a top-level package: found, not executed
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "engine" / "arg_utils.py"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def engine_arg_names() -> Optional[frozenset[str]]:
    """The installed vLLM's engine argument names; None (the check is skipped) where vLLM is not installed or
    its arguments are no longer where this reads them."""
    path = arg_utils_path()
    if path is None:
        log.debug("vLLM is not installed: vllm.extra engine arguments are not checked")
        return None
    try:
        names = dataclass_fields(path.read_text(encoding="utf-8"), ENGINE_ARGS_CLASS)
    except (OSError, SyntaxError, UnicodeDecodeError) as err:
        names = None
        log.warning("could not read vLLM's engine arguments from %s (%s)", path, err)
    if names is None:
        log.warning("%s defines no %s dataclass: vllm.extra engine arguments are not checked", path,
                    ENGINE_ARGS_CLASS)
    return names


def unknown_engine_args(keys: Iterable[str]) -> list[str]:
    """One problem per key that the installed vLLM's engine does not take, with its closest names."""
    keys = list(keys)
    names = engine_arg_names() if keys else None  # no engine arguments given: nothing read
    if names is None:
        return []
    problems = []
    for key in keys:
        if key in names:
            continue
        close = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        problems.append(f"'{key}' is not an argument of the installed vLLM's {ENGINE_ARGS_CLASS}{hint}")
    return problems


def close_engine_args(key: str) -> tuple[bool, list[str]]:
    """(whether `key` is an engine argument of the installed vLLM, its closest engine argument names)."""
    names = engine_arg_names() or frozenset()
    return key in names, difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)
