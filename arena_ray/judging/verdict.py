"""Judge outputs → verdicts, for every judge path (arena games, self-reward rubric, RL rewards, difficulty).
Pure: parsing in parse.py, scores mapped back to the models, logprob-weighted where the engine gave logprobs."""
from __future__ import annotations

from typing import Optional

from arena_ray.judging.parse import parse_pairwise, parse_rubric, rubric_span, weighted_score
from arena_ray.records import Completion, Judgment, TokenLogprob


def judgment_from(c: Completion, base: dict, position: int, score_line: str = "first") -> Judgment:
    """A pairwise judge completion → a Judgment with scores mapped back to (model_a, model_b). `score_line`:
    the template's (first, or last for reasoning-first templates)."""
    verdict = parse_pairwise(c.text, score_line)
    s1, s2, w1, w2 = verdict.score_1, verdict.score_2, None, None
    if verdict.ok and c.logprobs:
        w1, w2 = weighted_score(c.logprobs, verdict.span_1, c.text), weighted_score(c.logprobs, verdict.span_2, c.text)
        if w1 is None or w2 is None:
            w1 = w2 = None
    if position == 1:
        s1, s2, w1, w2 = s2, s1, w2, w1
    return Judgment(**base, score_a=s1, score_b=s2, weighted_score_a=w1, weighted_score_b=w2,
                    explanation=verdict.explanation, raw=c.text, parse_ok=verdict.ok, error=verdict.error,
                    latency_s=c.latency_s, completion_tokens=c.completion_tokens)


def missing_rubric_score(c: Completion) -> str:
    """'' when a rubric judgment has its `Score: N` line, else the reason it is asked again."""
    return "" if parse_rubric(c.text) is not None else "no 'Score: <0-5>' in the judgment"


def rubric_score(raw: str, logprobs: Optional[tuple[TokenLogprob, ...]] = None, weighted: bool = False,
                 ) -> Optional[float]:
    """A rubric judgment's 0-5 score: logprob-weighted when asked for and available, else as written; None when
    the judge wrote no score."""
    score = parse_rubric(raw)
    if weighted and score is not None and logprobs:
        value = weighted_score(logprobs, rubric_span(raw), raw, low=0.0, high=5.0)
        if value is not None:
            return value
    return score
