"""The installed vLLM's signatures and dataclass fields as `inspect.Signature`s, read from its source without
importing it (importing vllm takes 8-10 s here; parsing a file, milliseconds). A renamed or removed argument
of a call arena_ray makes then fails `Signature.bind` in a default-tier test, with vLLM's own binding rules.
tests/train/test_weight_push.py (slow tier) holds the same values against the imported classes."""
from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
from pathlib import Path
from typing import Optional

import pytest

P = inspect.Parameter


@functools.lru_cache(maxsize=1)
def vllm_root() -> Optional[Path]:
    spec = importlib.util.find_spec("vllm")  # found, not executed
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


needs_vllm = pytest.mark.skipif(vllm_root() is None, reason="vLLM is not installed")


@functools.lru_cache(maxsize=None)
def module(dotted: str) -> ast.Module:
    """vllm.x.y → its parsed source."""
    rel = Path(*dotted.split(".")[1:])
    path = vllm_root() / rel.with_suffix(".py")
    if not path.exists():
        path = vllm_root() / rel / "__init__.py"
    return ast.parse(path.read_text(encoding="utf-8"))


def find_class(dotted: str, name: str) -> tuple[str, ast.ClassDef]:
    """The class `name` as defined in, or imported by, module `dotted`."""
    tree = module(dotted)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return dotted, node
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vllm"):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return find_class(node.module, alias.name)
    raise LookupError(f"{dotted} has no class {name}")


def _params(args: ast.arguments) -> list[P]:
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = [P(a.arg, P.POSITIONAL_ONLY if a in args.posonlyargs else P.POSITIONAL_OR_KEYWORD,
             default=P.empty if d is None else ...) for a, d in zip(positional, defaults)]
    if args.vararg:
        out.append(P(args.vararg.arg, P.VAR_POSITIONAL))
    out += [P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else ...)
            for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        out.append(P(args.kwarg.arg, P.VAR_KEYWORD))
    return out


def method(dotted: str, cls: str, name: str, bound: bool = True) -> inspect.Signature:
    """The signature of `cls.name` (found up the class's vLLM bases); `bound`: without self/cls."""
    where, node = find_class(dotted, cls)
    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name:
            params = _params(stmt.args)
            static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in stmt.decorator_list)
            return inspect.Signature(params[1:] if bound and not static else params)
    for base in node.bases:
        if isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name):
            try:
                return method(where, base.id, name, bound)
            except LookupError:
                continue
    raise LookupError(f"{dotted}.{cls} has no method {name}")


def methods(dotted: str, cls: str) -> set[str]:
    _, node = find_class(dotted, cls)
    return {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _is_dataclass(node: ast.ClassDef) -> tuple[bool, bool]:
    """(a dataclass, kw_only for all its fields)."""
    for deco in node.decorator_list:
        call = deco if isinstance(deco, ast.Call) else None
        target = deco.func if call else deco
        if getattr(target, "id", getattr(target, "attr", "")) in ("dataclass", "config"):
            kw = any(k.arg == "kw_only" and getattr(k.value, "value", False) for k in (call.keywords if call else ()))
            return True, kw
    return False, False


def _field(stmt: ast.AnnAssign, all_kw: bool) -> Optional[P]:
    if "ClassVar" in ast.unparse(stmt.annotation):
        return None
    default, kw = stmt.value is not None, all_kw
    if isinstance(stmt.value, ast.Call) and getattr(stmt.value.func, "id", "") == "field":
        keys = {k.arg: k.value for k in stmt.value.keywords}
        if getattr(keys.get("init"), "value", True) is False:
            return None
        default = "default" in keys or "default_factory" in keys
        kw = kw or getattr(keys.get("kw_only"), "value", False)
    return P(stmt.target.id, P.KEYWORD_ONLY if kw else P.POSITIONAL_OR_KEYWORD, default=... if default else P.empty)


def dataclass_init(dotted: str, cls: str) -> inspect.Signature:
    """The generated __init__ of a vLLM dataclass: base fields first, keyword-only ones last."""
    where, node = find_class(dotted, cls)
    fields: dict[str, P] = {}
    for base in node.bases:
        if isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name) and base.id not in ("ABC", "Generic", "Protocol"):
            try:
                fields.update(dataclass_init(where, base.id).parameters)
            except LookupError:
                pass
    is_dc, all_kw = _is_dataclass(node)
    if not is_dc:
        raise LookupError(f"{dotted}.{cls} is not a dataclass")
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            p = _field(stmt, all_kw)
            if p is not None:
                fields[p.name] = p
    ordered = [p for p in fields.values() if p.kind is not P.KEYWORD_ONLY]
    ordered += [p for p in fields.values() if p.kind is P.KEYWORD_ONLY]
    return inspect.Signature(ordered, __validate_parameters__=False)


def registered(dotted: str, factory: str) -> dict[str, tuple[str, str]]:
    """Backend name → (module, class) of `factory.register_engine(...)` calls at the top of `dotted`."""
    out = {}
    for node in module(dotted).body:
        call = getattr(node, "value", None)
        if isinstance(call, ast.Call) and ast.unparse(call.func) == f"{factory}.register_engine":
            name, mod, cls = (a.value for a in call.args)
            out[name] = (mod, cls)
    return out


def literal_choices(dotted: str, cls: str, field: str) -> set[str]:
    _, node = find_class(dotted, cls)
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and getattr(stmt.target, "id", "") == field:
            return {n.value for n in ast.walk(stmt.annotation) if isinstance(n, ast.Constant)
                    and isinstance(n.value, str)}
    raise LookupError(f"{dotted}.{cls} has no field {field}")
