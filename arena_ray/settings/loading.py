"""Read a config: safe YAML (duplicate keys refused), `key=value` overrides, validation into a typed section.
Every problem is a ConfigError naming the file and key.

Override keys are dotted paths. A segment holding dots or other odd characters is quoted or bracketed:
    models."gpt-4.5".max_tokens=512      models[gpt-4.5].max_tokens=512      models['gpt-4.5'].env.X=1
Values are YAML scalars or flow collections: `flywheel.stages=[sft,dpo]`, `instructions.limit=null`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from arena_ray.errors import ConfigError
from arena_ray.settings.config import Config

OVERRIDE_HELP = ("dotted.key=value overrides (YAML values); quote or bracket a key that holds dots: "
                 "models.\"gpt-4.5\".max_tokens=512 or models[gpt-4.5].max_tokens=512")

M = TypeVar("M", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (YAML would silently keep the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def safe_load(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None


def split_key(key: str) -> list[str]:
    """`a."b.c"[d].e` → ['a', 'b.c', 'd', 'e']."""
    parts: list[str] = []
    i, n = 0, len(key)
    while i < n:
        ch = key[i]
        if ch in "\"'":
            end = key.find(ch, i + 1)
            if end < 0:
                raise ConfigError(f"override key '{key}': unclosed quote")
            parts.append(key[i + 1:end])
            i = end + 1
        elif ch == "[":
            end = key.find("]", i + 1)
            if end < 0:
                raise ConfigError(f"override key '{key}': unclosed '['")
            parts.append(key[i + 1:end].strip("\"'"))
            i = end + 1
        else:
            end = i
            while end < n and key[end] not in ".[":
                end += 1
            parts.append(key[i:end])
            i = end
        if i < n and key[i] == ".":
            i += 1
            if i == n:
                parts.append("")
    if not parts or any(not p for p in parts):
        raise ConfigError(f"override key '{key}': empty segment")
    return parts


def _split_override(text: str) -> tuple[str, str]:
    quote = None
    depth = 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "=" and depth == 0:
            return text[:i], text[i + 1:]
    if quote:
        raise ConfigError(f"override '{text}': unclosed {quote} in its key")
    raise ConfigError(f"override '{text}' is not key=value")


def parse_override(text: str) -> tuple[list[str], object]:
    key, raw = _split_override(text)
    value = safe_load(raw, f"override '{text}'") if raw != "" else ""
    return split_key(key), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{part}' is not a section")
            # A copy: a YAML alias (`vllm: *cpu_vllm`) shares one dict between sections, and an override of
            # one must not change the others.
            node[part] = child = dict(child)
            node = child
        node[path[-1]] = value
    return data


def _where(loc) -> str:
    out = ""
    for part in loc:
        text = str(part)
        out += (f"[{text}]" if isinstance(part, int) else
                f'."{text}"' if any(c in text for c in ".[]= ") else f".{text}")
    return out.lstrip(".") or "<root>"


def format_validation(err: ValidationError, source: str) -> str:
    problems = [f"{_where(item['loc'])}: {item['msg']}" for item in err.errors()]
    return f"invalid config ({source}): " + "; ".join(problems)


def from_dict(data: dict, source: str = "<dict>", schema: type[M] = None) -> M:
    try:
        return (schema or Config).model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation(err, source)) from None


def load(path: str | Path, overrides: list[str] | None = None, schema: type[M] = None) -> M:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    data = safe_load(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return from_dict(apply_overrides(data, overrides or []), source=str(path), schema=schema)


REDACTED = "<redacted>"
# Strings shaped like credentials (OpenAI/Anthropic `sk-…`, Hugging Face `hf_…`, bearer tokens, GitHub `ghp_…`).
_SECRET = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|Bearer\s+\S{8,})")


_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|CREDENTIAL|AUTH", re.IGNORECASE)


def redacted(value, key: str = ""):
    """The config as it may be stored: `env` values whose variable is named like a secret (HF_TOKEN,
    WANDB_API_KEY, …) and every string shaped like a credential replaced by <redacted>; the rest (e.g.
    VLLM_CPU_KVCACHE_SPACE) stays, so the record still says how the run was set up."""
    if isinstance(value, dict):
        if key == "env":
            return {k: REDACTED if _SECRET_NAME.search(k) else redacted(v) for k, v in value.items()}
        return {k: redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    if isinstance(value, str) and _SECRET.search(value):
        return _SECRET.sub(REDACTED, value)
    return value


def dump(config: BaseModel) -> str:
    """The resolved config for a run directory's config.yaml, secrets redacted (see `redacted`)."""
    return yaml.safe_dump(redacted(config.model_dump(mode="json")), sort_keys=False)
