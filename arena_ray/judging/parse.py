"""Parse a pairwise judge's output: two 1-10 scores, an explanation, and logprob-weighted scores. Pure."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional, Sequence

from arena_ray.records import TokenLogprob

SCORE_MIN, SCORE_MAX = 1.0, 10.0
_NUM = r"(\d+(?:\.\d+)?)"
# "8 7", "8, 7", "8/10 7/10", "8 and 7", "Scores: 8 7"
_PAIR_LINE = re.compile(rf"^\D{{0,20}}?{_NUM}(?:\s*/\s*10)?\s*(?:,|and|\s|;|\|)\s*{_NUM}(?:\s*/\s*10)?\s*\.?\s*$",
                        re.IGNORECASE)
_LABELLED = re.compile(rf"assistant\s*([12])\D{{0,25}}?{_NUM}(?:\s*/\s*10)?", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """Scores in the order shown to the judge (first answer, second answer)."""

    score_1: Optional[float]
    score_2: Optional[float]
    explanation: str
    error: str = ""
    # Character offsets of each score in the raw text (for logprob weighting).
    span_1: Optional[tuple[int, int]] = None
    span_2: Optional[tuple[int, int]] = None

    @property
    def ok(self) -> bool:
        return not self.error


def _failed(reason: str, raw: str) -> Verdict:
    return Verdict(None, None, raw.strip(), error=reason)


_FINAL_LINE = re.compile(rf"^[\s*#]*(?:final\s+)?scores?\s*\**\s*:\s*\**\s*{_NUM}(?:\s*/\s*10)?\s*(?:,|and|\s|;|\|)\s*"
                         rf"{_NUM}(?:\s*/\s*10)?\s*\**\s*\.?\s*$", re.IGNORECASE)


def parse_pairwise(raw: str, score_line: str = "first") -> Verdict:
    """`score_line` "first": the first non-empty line holds the two scores (Arena Learning format), else
    labelled scores anywhere. "last" (reasoning first): the last `Scores: X Y` line; the text before it is the
    explanation."""
    if not raw or not raw.strip():
        return _failed("empty output", raw or "")
    if score_line == "last":
        return _parse_last(raw)
    offset = 0
    for line in raw.splitlines(keepends=True):
        if line.strip():
            match = _PAIR_LINE.match(line.strip())
            if match:
                lead = offset + line.index(line.strip())
                spans = ((lead + match.start(1), lead + match.end(1)), (lead + match.start(2), lead + match.end(2)))
                return _checked(float(match.group(1)), float(match.group(2)), raw[offset + len(line):].strip(),
                                raw, spans)
            break
        offset += len(line)
    labelled: dict[str, tuple[float, tuple[int, int]]] = {}
    for match in _LABELLED.finditer(raw):
        labelled.setdefault(match.group(1), (float(match.group(2)), match.span(2)))
    if "1" in labelled and "2" in labelled:
        (s1, sp1), (s2, sp2) = labelled["1"], labelled["2"]
        return _checked(s1, s2, raw.strip(), raw, (sp1, sp2))
    return _failed("no score pair found", raw)


def _parse_last(raw: str) -> Verdict:
    offset, found = 0, None
    for line in raw.splitlines(keepends=True):
        match = _FINAL_LINE.match(line.rstrip("\n"))
        if match:
            found = (offset, match)
        offset += len(line)
    if found is None:
        return _failed("no final 'Scores: X Y' line", raw)
    start, match = found
    spans = ((start + match.start(1), start + match.end(1)), (start + match.start(2), start + match.end(2)))
    return _checked(float(match.group(1)), float(match.group(2)), raw[:start].strip(), raw, spans)


def _checked(s1: float, s2: float, explanation: str, raw: str, spans) -> Verdict:
    for s in (s1, s2):
        if not (SCORE_MIN <= s <= SCORE_MAX):
            return _failed(f"score {s:g} out of range {SCORE_MIN:g}-{SCORE_MAX:g}", raw)
    return Verdict(s1, s2, explanation, span_1=spans[0], span_2=spans[1])



def _digit_probs(top: Sequence[tuple[str, float]]) -> dict[int, float]:
    probs: dict[int, float] = {}
    for text, lp in top:
        stripped = text.strip()
        if stripped.isdigit() and math.isfinite(lp):
            probs[int(stripped)] = probs.get(int(stripped), 0.0) + math.exp(lp)
    return probs


def weighted_score(logprobs: Sequence[TokenLogprob], span: tuple[int, int], raw: str, low: float = SCORE_MIN,
                   high: float = SCORE_MAX) -> Optional[float]:
    """Expected score over the score tokens' probabilities at the position of the written score.

    Handles scores written as one token ("7", " 7") and tokenizers that spell "10" as "1" + "0": when the
    sampled first digit is "1", the next position's P("0") splits P("1") between 10 and 1. When another digit
    was sampled, the split of P("1") is unknown; the weighting is given up (None) unless P("1") is negligible.
    Returns None where the tokens don't line up with the text.
    """
    if not logprobs:
        return None
    # Detokenised pieces need not join to the exact text (special tokens, byte fallback); require only
    # that they agree with it up to the score.
    if "".join(t.token for t in logprobs)[:span[1]] != raw[:span[1]]:
        return None
    start = 0
    for index, tok in enumerate(logprobs):
        end = start + len(tok.token)
        if start <= span[0] < end:
            return _expected(logprobs, index, raw[span[0]:span[1]], tok.token.strip(), low, high)
        start = end
    return None


def _expected(logprobs: Sequence[TokenLogprob], index: int, written: str, token: str, low: float,
              high: float) -> Optional[float]:
    probs = _digit_probs(logprobs[index].top)
    mass: dict[float, float] = {v: p for v, p in probs.items() if low <= v <= high and v != 1}
    p_one = probs.get(1, 0.0)
    if token == written:  # the whole score is this one token
        if 10 in probs or high < 10:  # a "10" token exists, or the scale stops below 10: "1" means 1
            mass[1.0] = p_one
        elif p_one > 0.05 * sum(probs.values()):
            return None
    elif token == "1" and written == "10" and index + 1 < len(logprobs):
        nxt = _digit_probs(logprobs[index + 1].top)
        nxt_total = sum(math.exp(lp) for _, lp in logprobs[index + 1].top if math.isfinite(lp))
        p_zero = nxt.get(0, 0.0) / nxt_total if nxt_total > 0 else 1.0
        mass[10.0] = mass.get(10.0, 0.0) + p_one * p_zero
        mass[1.0] = p_one * (1 - p_zero)
    else:
        return None
    total = sum(mass.values())
    return sum(v * p for v, p in mass.items()) / total if total > 0 else None


_RUBRIC = re.compile(r"score\s*[:=]\s*\**\s*([0-5])(?:\.0)?\s*(?:/\s*5|points?)?\b", re.IGNORECASE)


def rubric_span(raw: str) -> Optional[tuple[int, int]]:
    """Where the last `Score: <0-5>` is written (the rubric asks for it at the end), or None."""
    matches = list(_RUBRIC.finditer(raw or ""))
    return matches[-1].span(1) if matches else None


def parse_rubric(raw: str) -> Optional[float]:
    """The additive rubric's total (0-5) from `Score: N`, or None when the judge wrote no such line."""
    span = rubric_span(raw)
    return float(raw[span[0]:span[1]]) if span else None
