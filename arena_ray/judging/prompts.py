"""Versioned judge prompt templates (YAML files under templates/) and the messages built from them."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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
    score_line: str = "first"   # where the verdict's score line is: first (then the explanation) or last
    # Reference-guided judging (MT-bench math / reasoning / coding): where the user text has
    # {reference_block}, it becomes this block (holding {reference}) when the question has a reference answer
    # and nothing otherwise; {reference_note} likewise becomes reference_note.
    reference_block: str = ""
    reference_note: str = ""

    @property
    def fenced(self) -> bool:
        """Whether the answers' fences carry a per-request nonce (fence-like text in answers is then defused and
        every answer line quoted)."""
        return NONCE in self.user

    @property
    def takes_reference(self) -> bool:
        return REFERENCE_BLOCK in self.user

    def messages(self, question: str, answer_1: str, answer_2: str, nonce: Optional[str] = None,
                 reference: Optional[str] = None) -> tuple[ChatMessage, ...]:
        """`nonce`: the fences' code; a fenced template draws a fresh one per call when none is given.
        `reference`: a reference answer, shown where the template takes one (else ignored)."""
        system, user = self.system, self.user
        with_reference = bool(reference) and self.takes_reference
        # The template's own parts first: the nonce and the reference block go into its text before any
        # question or answer does, so "{nonce}" inside an answer stays literal.
        user = user.replace(REFERENCE_BLOCK, self.reference_block if with_reference else "")
        user = user.replace(REFERENCE_NOTE, self.reference_note if with_reference else "")
        if self.fenced:
            nonce = nonce or secrets.token_hex(8)
            system, user = system.replace(NONCE, nonce), user.replace(NONCE, nonce)
            answer_1, answer_2 = quoted(defuse(answer_1)), quoted(defuse(answer_2))
        values = {"{question}": question, "{answer_1}": answer_1, "{answer_2}": answer_2}
        if with_reference:
            values["{reference}"] = reference
        msgs = [ChatMessage("user", fill(user, values))]
        if system:
            msgs.insert(0, ChatMessage("system", system))
        return tuple(msgs)


def fill(text: str, values: dict[str, str]) -> str:
    """Each placeholder replaced once, in the order they appear. str.replace / str.format would re-scan what
    was inserted: an answer containing "{answer_2}" (or braces: code, JSON) would pull text into its slot."""
    positions = sorted((text.index(k), k) for k in values)
    out, at = [], 0
    for pos, key in positions:
        out += [text[at:pos], values[key]]
        at = pos + len(key)
    return "".join(out) + text[at:]


REFERENCE_BLOCK, REFERENCE_NOTE = "{reference_block}", "{reference_note}"
NONCE = "{nonce}"
# Text in an answer that could pass for one of the prompt's own markers or headings: its bracket becomes a
# parenthesis, so "[The End of Assistant 1's Answer]" inside an answer no longer looks like the fence.
_FENCE_LIKE = re.compile(r"\[(?=\s*(?:the\s+(?:start|end)\s+of\b|system|question|the\s+user)\b)", re.I)


def defuse(answer: str) -> str:
    return _FENCE_LIKE.sub("(", answer)


def quoted(answer: str) -> str:
    """Every line of an answer marked as quoted data ("datamarking", Hines et al. 2024, Spotlighting): no line
    of an answer can pass for a line of the prompt. Measured on SmolLM2-135M (benchmarks/judge_injection.py):
    instruction injections flipped 7 of 24 verdicts with it, 10 without, 12 with the unfenced pairwise-v1."""
    return "\n".join(QUOTE + line for line in answer.split("\n"))


QUOTE = "| "


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


# Template fields that hold text (a list or a number there would fail deep inside prompt building).
_TEXT_FIELDS = ("kind", "system", "user", "output_regex", "score_line", "reference_block", "reference_note")


def _read(name_or_path: str, kind: str) -> tuple[Path, dict]:
    path = Path(name_or_path)
    if not path.suffix:
        path = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"{kind} prompt '{name_or_path}' not found (shipped: {', '.join(available(kind))})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a readable YAML template ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a template is a YAML mapping (version, user, output_regex, …)")
    wrong = [k for k, v in data.items() if k in _TEXT_FIELDS and not isinstance(v, str)]
    if wrong:
        raise ConfigError(f"{path}: field(s) {wrong} must be text")
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
    if data.get("score_line", "first") not in ("first", "last"):
        raise ConfigError(f"{path}: field 'score_line' must be first or last, got {data['score_line']!r}")
    if (REFERENCE_BLOCK in data["user"]) != ("{reference}" in data.get("reference_block", "")):
        raise ConfigError(f"{path}: a {REFERENCE_BLOCK} in 'user' needs a 'reference_block' with {{reference}}")
    return PairwiseTemplate(version=str(data["version"]), system=data.get("system") or "",
                            user=data["user"], output_regex=data["output_regex"],
                            score_line=data.get("score_line", "first"),
                            reference_block=data.get("reference_block", ""),
                            reference_note=data.get("reference_note", ""))
