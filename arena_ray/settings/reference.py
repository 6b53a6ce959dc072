"""configs/reference.yaml: every key of every config with its default and one-line meaning, generated from the
settings classes (their field docstrings), so it cannot drift from the code. A test regenerates and compares.

    python -m arena_ray.settings.reference > configs/reference.yaml
"""
from __future__ import annotations

import json
import sys
from typing import Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from arena_ray.settings.config import Config
from arena_ray.settings.data import DataJob
from arena_ray.settings.testset import TestsetJob

DOCUMENTS = (
    ("arena-ray arena | flywheel | self-reward | ppo --config FILE", Config),
    ("arena-ray data prepare --config FILE", DataJob),
    ("arena-ray testset --config FILE", TestsetJob),
)
HEADER = ("# Every config key with its default and meaning. Generated from arena_ray/settings by\n"
          "#   python -m arena_ray.settings.reference > configs/reference.yaml\n"
          "# Do not edit: tests/settings/test_reference.py fails when this file is stale.\n")


def _section(annotation) -> tuple[type[BaseModel] | None, str]:
    """The settings class inside an annotation, and how it holds it: '' (plain), 'optional' or 'mapping'."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            model, _ = _section(inner[0])
            return model, "optional" if model else ""
    if origin is dict and len(args) == 2:
        model, _ = _section(args[1])
        return model, "mapping" if model else ""
    return None, ""


def _scalar(value) -> str:
    if isinstance(value, str) and "\n" in value:
        return json.dumps(value)  # a JSON string is a double-quoted YAML scalar, on one line
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip().removesuffix("\n...").strip()


def _meaning(text: str | None) -> str:
    return " ".join((text or "").split())


def _lines(model: type[BaseModel], indent: int) -> list[str]:
    out = []
    pad = "  " * indent
    for name, field in model.model_fields.items():
        meaning = _meaning(field.description)
        inner, how = _section(field.annotation)
        if inner is not None:
            note = {"optional": " (optional section)", "mapping": " (one entry per name)"}.get(how, "")
            out.append(f"{pad}{name}:  # {meaning}{note}")
            if how == "mapping":
                out.append(f"{pad}  <name>:")
                out += _lines(inner, indent + 2)
            else:
                out += _lines(inner, indent + 1)
            continue
        if field.default is PydanticUndefined and field.default_factory is None:
            value = "<required>"
        else:
            value = _scalar(field.get_default(call_default_factory=True))
        out.append(f"{pad}{name}: {value}  # {meaning}")
    return out


def render() -> str:
    docs = [HEADER]
    for command, model in DOCUMENTS:
        docs.append(f"---\n# {command}\n" + "\n".join(_lines(model, 0)) + "\n")
    return "".join(docs)


def undocumented() -> list[str]:
    """Fields without a meaning (a test keeps this empty)."""
    missing, seen = [], set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if not _meaning(field.description):
                missing.append(f"{model.__name__}.{name}")
            inner, _ = _section(field.annotation)
            if inner is not None:
                walk(inner, f"{prefix}{name}.")
    for _, model in DOCUMENTS:
        walk(model, "")
    return missing


if __name__ == "__main__":
    sys.stdout.write(render())
