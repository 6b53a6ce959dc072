"""Versioned judge prompt templates (YAML files under templates/) and the messages built from them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from arena_ray.errors import ConfigError
from arena_ray.records import ChatMessage

TEMPLATE_DIR = Path(__file__).parent / "templates"
_PLACEHOLDERS = ("{question}", "{answer_1}", "{answer_2}")


@dataclass(frozen=True)
class PairwiseTemplate:
    version: str
    system: str
    user: str
    output_regex: str

    def messages(self, question: str, answer_1: str, answer_2: str) -> tuple[ChatMessage, ...]:
        # str.replace, not str.format: answers are full of braces (code, JSON).
        # Each placeholder is substituted once, left to right, so an answer that itself contains
        # "{answer_2}" cannot pull the other answer into its slot.
        user = self.user
        head, rest = user.split("{question}", 1)
        mid, tail = rest.split("{answer_1}", 1)
        mid2, tail2 = tail.split("{answer_2}", 1)
        user = head + question + mid + answer_1 + mid2 + answer_2 + tail2
        msgs = [ChatMessage("user", user)]
        if self.system:
            msgs.insert(0, ChatMessage("system", self.system))
        return tuple(msgs)


@dataclass(frozen=True)
class DifficultyTemplate:
    version: str
    system: str
    user: str
    output_regex: str

    def messages(self, instruction: str) -> tuple[ChatMessage, ...]:
        head, tail = self.user.split("{instruction}", 1)
        msgs = [ChatMessage("user", head + instruction + tail)]
        if self.system:
            msgs.insert(0, ChatMessage("system", self.system))
        return tuple(msgs)


@dataclass(frozen=True)
class RubricTemplate:
    """A single-answer rubric (Self-Rewarding LMs): the judge scores one response to one instruction."""

    version: str
    system: str
    user: str
    output_regex: str

    def messages(self, instruction: str, response: str) -> tuple[ChatMessage, ...]:
        head, rest = self.user.split("{instruction}", 1)
        mid, tail = rest.split("{response}", 1)
        msgs = [ChatMessage("user", head + instruction + mid + response + tail)]
        if self.system:
            msgs.insert(0, ChatMessage("system", self.system))
        return tuple(msgs)


def cut_answer(text: str, limit: int) -> str:
    """An answer as the judge is shown it: cut at `limit` characters, with a marker, so the prompt fits."""
    return text if len(text) <= limit else text[:limit] + "\n[... answer truncated ...]"


def available(kind: str = "pairwise") -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml") if yaml.safe_load(p.read_text()).get("kind") == kind)


def _read(name_or_path: str, kind: str) -> tuple[Path, dict]:
    path = Path(name_or_path)
    if not path.suffix:
        path = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"{kind} prompt '{name_or_path}' not found (shipped: {', '.join(available(kind))})")
    data = yaml.safe_load(path.read_text())
    if data.get("kind", kind) != kind:
        raise ConfigError(f"{path}: a '{data.get('kind')}' template, not '{kind}'")
    return path, data


def load_difficulty_template(name_or_path: str) -> DifficultyTemplate:
    path, data = _read(name_or_path, "difficulty")
    if not data.get("version") or data.get("user", "").count("{instruction}") != 1:
        raise ConfigError(f"{path}: needs 'version' and a 'user' field with {{instruction}} exactly once")
    return DifficultyTemplate(str(data["version"]), data.get("system") or "", data["user"], data["output_regex"])


def load_rubric_template(name_or_path: str) -> RubricTemplate:
    path, data = _read(name_or_path, "rubric")
    user = data.get("user", "")
    if not data.get("version") or user.count("{instruction}") != 1 or user.count("{response}") != 1 or \
            user.index("{instruction}") > user.index("{response}"):
        raise ConfigError(f"{path}: needs 'version' and a 'user' field with {{instruction}} then {{response}}, "
                            f"each exactly once")
    return RubricTemplate(str(data["version"]), data.get("system") or "", user, data["output_regex"])


def load_template(name_or_path: str) -> PairwiseTemplate:
    """Load a pairwise template by version name (shipped) or by a path to a YAML file of the same shape."""
    path, data = _read(name_or_path, "pairwise")
    missing = [k for k in ("version", "user", "output_regex") if not data.get(k)]
    if missing:
        raise ConfigError(f"{path}: missing field(s) {missing}")
    for ph in _PLACEHOLDERS:
        if data["user"].count(ph) != 1:
            raise ConfigError(f"{path}: field 'user' must contain {ph} exactly once")
    if data["user"].index("{question}") > data["user"].index("{answer_1}") or \
            data["user"].index("{answer_1}") > data["user"].index("{answer_2}"):
        raise ConfigError(f"{path}: placeholders must appear in the order question, answer_1, answer_2")
    return PairwiseTemplate(version=str(data["version"]), system=data.get("system") or "",
                            user=data["user"], output_regex=data["output_regex"])
