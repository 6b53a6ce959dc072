"""An arena: who battles whom, how the judge is asked, and how battles become ratings."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict


class ActiveConfig(Strict):
    """`pairing: active`: battles chosen where they make the ranking more certain (arena_ray.rating.active)."""

    batch: Optional[int] = Field(None, ge=1)
    """Battles chosen per round (the ratings are refitted between rounds); null: twice the judge's capacity."""
    resolution: float = Field(25.0, gt=0)
    """Rating gap (points) below which two models need not be told apart: a pair is done once its intervals are
    apart, or once it is certainly closer than this."""
    seed: int = 0
    """Seed of the choices."""


class ArenaConfig(Strict):
    competitors: tuple[str, ...] = Field(min_length=2)
    """Models (keys of `models`) that answer the instructions and battle each other."""
    pairing: Literal["all_pairs", "target_vs_all", "active"] = "all_pairs"
    """all_pairs: every pair of competitors on every instruction; target_vs_all: `target` against each other
    competitor; active: every pair once, then the battles that shrink the ranking's uncertainty most, round by
    round, until every pair is settled or `max_battles` is spent."""
    max_battles: Optional[int] = Field(None, ge=1)
    """Battles at most (a budget; the first ones in plan order for the static pairings); null: no cap."""
    active: ActiveConfig = Field(default_factory=ActiveConfig)
    """Settings of `pairing: active`."""
    categories: tuple[str, ...] = ()
    """Also one board per value of each of these fields (an instruction's `category`, or `prompt_length`,
    `coding`, `language` derived from the prompt), under run_dir/by-<field>/."""
    battle_conversations: bool = True
    """battles.jsonl carries both conversations (FastChat's `conversation_a/b`, as its conversation releases do);
    false: only the verdict fields, for very large runs (every answer is repeated in each of its battles)."""
    target: Optional[str] = None
    """The competitor every battle includes (pairing: target_vs_all)."""
    request_timeout_s: float = Field(600.0, gt=0)
    """A request without an answer after this long is a transport failure (retried)."""
    max_retries: int = Field(3, ge=0)
    """Transport failures (timeouts, dead replicas) are retried this many times before a request fails."""
    retry_backoff_s: float = Field(1.0, ge=0)
    """First wait before a retry; doubled on each further retry."""
    max_in_flight_judgments: Optional[int] = Field(None, ge=1)
    """Judge requests in flight; null: the judge's replicas x max_ongoing_requests (every replica kept full)."""
    coordinator_restarts: int = Field(3, ge=0)
    """Ray restarts a dead coordinator this many times; each new one resumes from the ledger."""
    flush_every: int = Field(32, ge=1)
    """Records buffered before a ledger part is written."""
    flush_interval_s: float = Field(5.0, gt=0)
    """Longest time a record waits in the buffer."""

    @model_validator(mode="after")
    def _target_known(self) -> "ArenaConfig":
        if len(set(self.competitors)) != len(self.competitors):
            raise ValueError("competitors has duplicates")
        if self.pairing == "target_vs_all" and self.target not in self.competitors:
            raise ValueError(f"pairing target_vs_all needs 'target' among competitors, got {self.target!r}")
        return self


class JudgeConfig(Strict):
    model: str
    """The judge (a key of `models`; it may also be a competitor: one deployment serves both)."""
    prompt: str = "pairwise-v3-fenced"
    """Pairwise template: a shipped version name or a path to a YAML of the same shape."""
    panel: list[str] = Field(default_factory=list)
    """A judge panel: models (keys of `models`, `model` among them) that all judge every game; `panel_rule`
    combines their verdicts on a battle. Empty: `model` judges alone."""
    panel_rule: Literal["mean", "majority"] = "mean"
    """mean: a battle's scores are the members' mean scores (each member's two orders combined first);
    majority: the winner more than half the members chose, else a tie."""
    multi_turn_prompt: str = "pairwise-multiturn-v1"
    """Template of multi-turn battles (instructions with several user turns, e.g. MT-bench): the judge sees
    each competitor's answers to every turn."""
    use_references: bool = True
    """Show the judge a question's reference answer where it has one (MT-bench math, reasoning, coding)."""
    max_tokens: int = Field(256, ge=8)
    """New tokens per verdict."""
    temperature: float = Field(0.0, ge=0)
    """Sampling temperature of the first attempt."""
    retry_temperature: float = Field(0.7, ge=0)
    """Temperature of re-asked games: parse failures are retried with sampling on, so a deterministic judge can
    still recover."""
    max_attempts: int = Field(3, ge=1)
    """Attempts per game before it counts as failed (never as a tie)."""
    disagreement: Literal["average", "tie", "discard"] = "average"
    """How to combine a battle's two games when their winners disagree."""
    tie_margin: float = Field(0.0, ge=0)
    """|score_a - score_b| <= tie_margin is a tie."""
    max_answer_chars: int = Field(4000, ge=100)
    """Answers longer than this are cut (with a marker) in the judge prompt so it fits the judge's context."""
    logprob_weighted: bool = True
    """Use the expected score over the score tokens' probabilities where the engine returns logprobs."""
    top_logprobs: int = Field(5, ge=1, le=20)
    """Alternatives per token asked for when logprob_weighted."""
    constrain_format: bool = True
    """Hold the judge's output to the score-line format (vLLM structured outputs): weak judges then always
    produce a parsable verdict. Ignored by engines that cannot constrain."""
    cache_dir: Optional[str] = None
    """A judgment cache shared between runs (keyed by judge, template, instruction and both answers in order):
    a run that meets the same judge and answers again asks the judge nothing; null: no cache."""
    card: bool = True
    """Measure the judge against people before its board is shown: accuracy and position consistency on
    human-labelled pairs (`card_data`), printed and stored beside the leaderboard, with a plain warning when the
    judge is weak. Computed once per judge fingerprint and cached (`card_cache_dir`)."""
    card_data: Optional[list[str]] = None
    """Human-labelled pair files for the card (generic JSONL, PandaLM, LLMBar/FairEval or HH-RLHF); null: the
    24 LLMBar-natural pairs shipped in the package (arena_ray/data/human/)."""
    card_limit: Optional[int] = Field(None, ge=1)
    """Pairs read from each card file (the first ones); null: all."""
    card_cache_dir: str = "runs/judge_cards"
    """Cards by judge fingerprint (judge model and every setting that changes a verdict, the template, the
    data): a run with a judge already measured reuses its card."""


ARENA_HARD_STRONG_GAP = 3.0
"""`export arena-hard`: a score gap (1-10 scale) at or above which a game is arena-hard's `>>` ("much better")."""


class RatingConfig(Strict):
    bootstrap_rounds: int = Field(100, ge=0, le=100_000)
    """Bootstrap resamples of the battles for the 95% intervals; 0: no intervals (FastChat and arena-hard use
    100-1000; the cap keeps a typo from asking for terabytes)."""
    seed: int = Field(0, ge=0)
    """Seed of the bootstrap."""
    scale: float = Field(400.0, gt=0)
    """Rating points per factor 10 in the odds of winning."""
    base: float = 1000.0
    """Mean rating (without an anchor)."""
