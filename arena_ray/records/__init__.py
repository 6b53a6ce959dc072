"""Typed records that cross every boundary (actors, deployments, files), and their Arrow schemas."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import pyarrow as pa


@dataclass(frozen=True)
class Instruction:
    instruction_id: str
    text: str                          # the first user turn
    source: str
    category: str = ""
    turns: tuple[str, ...] = ()        # further user turns (MT-bench), answered one after another
    references: tuple[str, ...] = ()   # a reference answer per turn (MT-bench math, reasoning, coding)

    @property
    def user_turns(self) -> tuple[str, ...]:
        return (self.text, *self.turns)


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class SamplingSpec:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_logprobs: Optional[int] = None
    # A regular expression the output must match (structured outputs); engines that can't, ignore it.
    regex: Optional[str] = None
    seed: Optional[int] = None
    # Return token ids and sampled-token logprobs (rollouts for RL).
    return_tokens: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    messages: tuple[ChatMessage, ...]
    # None: the model's own sampling defaults from its config.
    sampling: Optional[SamplingSpec] = None
    # The instruction id a replay engine looks the answer up by.
    instruction_id: Optional[str] = None
    # Answer with at least this weight version (a policy being trained): a replica behind it first loads
    # the latest published weights.
    weight_version: Optional[int] = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token and the engine's top alternatives at that position."""

    token: str
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: Optional[int]
    completion_tokens: Optional[int]
    finish_reason: str
    latency_s: float
    logprobs: Optional[tuple[TokenLogprob, ...]] = None
    # Token ids and each sampled token's logprob (SamplingSpec.return_tokens; engines that have them).
    prompt_token_ids: Optional[tuple[int, ...]] = None
    token_ids: Optional[tuple[int, ...]] = None
    token_logprobs: Optional[tuple[float, ...]] = None
    # The weight version that produced this answer (a policy being trained); None: the served checkpoint.
    weight_version: Optional[int] = None


@dataclass(frozen=True)
class Generation:
    instruction_id: str
    model: str
    text: str
    prompt_tokens: Optional[int]
    completion_tokens: Optional[int]
    latency_s: float
    finish_reason: str
    error: str = ""  # non-empty: no answer could be had (e.g. a replay file lacks it)


@dataclass(frozen=True)
class Judgment:
    """One game: the judge's verdict on a battle with the answers in one order.

    Scores always refer to model_a / model_b, whichever was shown first (position 0: model_a first).
    """

    battle_id: str
    instruction_id: str
    model_a: str
    model_b: str
    position: int
    attempt: int
    score_a: Optional[float]
    score_b: Optional[float]
    weighted_score_a: Optional[float]
    weighted_score_b: Optional[float]
    explanation: str
    raw: str
    judge: str
    prompt_version: str
    parse_ok: bool
    error: str = ""
    latency_s: float = 0.0
    completion_tokens: Optional[int] = None
    tstamp: float = 0.0  # Unix time the verdict was recorded (0: a ledger written before it was kept)


@dataclass(frozen=True)
class Battle:
    """Two games combined; FastChat arena format plus scores."""

    battle_id: str
    question_id: str
    model_a: str
    model_b: str
    winner: str  # model_a | model_b | tie
    score_a: float
    score_b: float
    consistent: bool
    judge: str
    prompt_version: str
    tstamp: float = 0.0  # the later of its games' (FastChat orders battles by it)


@dataclass(frozen=True)
class HumanPair:
    """Two responses to one instruction and which one people preferred."""

    pair_id: str
    instruction: str
    response_1: str
    response_2: str
    label: int   # +1: response 1 preferred, -1: response 2, 0: tie


@dataclass(frozen=True)
class BoardEntry:
    """One model on a leaderboard (ours or a reference one): rating and, where known, its 95% interval."""

    rating: float
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None


@dataclass(frozen=True)
class SFTExample:
    """A prompt and the answer to imitate, as chat messages (TRL/OpenRLHF `messages`)."""

    instruction_id: str
    prompt: str
    response: str
    source_model: str
    battle_id: str
    score_gap: float


@dataclass(frozen=True)
class PreferencePair:
    """`prompt, chosen, rejected` as TRL's DPOTrainer/RewardTrainer and OpenRLHF expect them."""

    instruction_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_model: str
    rejected_model: str
    battle_id: str
    score_gap: float


@dataclass(frozen=True)
class Rating:
    """One model on a leaderboard. A separated model (it won, or lost, every battle against the rated block,
    so no finite maximum-likelihood rating exists) has rating and interval None and says how it is placed."""

    model: str
    rating: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    battles: int
    rank_ub: int = 0          # 1 + models whose lower bound is above this one's upper bound (Chatbot Arena)
    rank_best: int = 0        # 95% bootstrap interval of the rank
    rank_worst: int = 0
    separated: str = ""       # "" | "above" (never lost to the rated models) | "below" (never won) | "apart"



INSTRUCTION_SCHEMA = pa.schema([
    ("instruction_id", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("category", pa.string()),
    ("turns", pa.list_(pa.string())),
    ("references", pa.list_(pa.string())),
])
# Columns a file written by an earlier release may lack, and what they read as.
OPTIONAL_COLUMNS = {"turns": [], "references": []}

GENERATION_SCHEMA = pa.schema([
    ("instruction_id", pa.string()),
    ("model", pa.string()),
    ("text", pa.string()),
    ("prompt_tokens", pa.int64()),
    ("completion_tokens", pa.int64()),
    ("latency_s", pa.float64()),
    ("finish_reason", pa.string()),
    ("error", pa.string()),
])

JUDGMENT_SCHEMA = pa.schema([
    ("battle_id", pa.string()),
    ("instruction_id", pa.string()),
    ("model_a", pa.string()),
    ("model_b", pa.string()),
    ("position", pa.int8()),
    ("attempt", pa.int16()),
    ("score_a", pa.float64()),
    ("score_b", pa.float64()),
    ("weighted_score_a", pa.float64()),
    ("weighted_score_b", pa.float64()),
    ("explanation", pa.string()),
    ("raw", pa.string()),
    ("judge", pa.string()),
    ("prompt_version", pa.string()),
    ("parse_ok", pa.bool_()),
    ("error", pa.string()),
    ("latency_s", pa.float64()),
    ("completion_tokens", pa.int64()),
    ("tstamp", pa.float64()),
])
# Judgment columns a ledger written by an earlier release may lack, and what they read as.
JUDGMENT_OPTIONAL = {"tstamp": 0.0}

SCHEMAS = {Instruction: INSTRUCTION_SCHEMA, Generation: GENERATION_SCHEMA, Judgment: JUDGMENT_SCHEMA}


def to_table(records: list, record_type: type) -> pa.Table:
    schema = SCHEMAS[record_type]
    columns = {name: [getattr(r, name) for r in records] for name in schema.names}
    return pa.table(columns, schema=schema)


def from_table(table: pa.Table, record_type: type) -> list:
    names = [f.name for f in dataclasses.fields(record_type)]
    return [record_type(**{n: tuple(row[n]) if isinstance(row[n], list) else row[n] for n in names})
            for row in table.to_pylist()]


@dataclass(frozen=True)
class BatchRow:
    """One answer (or failed request) of a resumable request batch, as a line of its JSONL file."""

    key: str
    attempt: int
    ok: bool
    error: str = ""
    text: Optional[str] = None
    failed_request: bool = False
    completion_tokens: Optional[int] = None
    weight_version: Optional[int] = None
    prompt_token_ids: Optional[tuple[int, ...]] = None
    token_ids: Optional[tuple[int, ...]] = None
    token_logprobs: Optional[tuple[float, ...]] = None
    logprobs: Optional[tuple[TokenLogprob, ...]] = None

    @classmethod
    def of(cls, key: str, attempt: int, completion: Optional["Completion"], error: str) -> "BatchRow":
        if completion is None:
            return cls(key, attempt, False, error, failed_request=True)
        c = completion
        return cls(key, attempt, not error, error, c.text, False, c.completion_tokens, c.weight_version,
                   c.prompt_token_ids, c.token_ids, c.token_logprobs, c.logprobs)

    def completion(self) -> "Completion":
        """The answer as a Completion again (latency and prompt size are not kept in a batch file)."""
        return Completion(self.text or "", None, self.completion_tokens, "", 0.0, self.logprobs,
                          self.prompt_token_ids, self.token_ids, self.token_logprobs, self.weight_version)

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["logprobs"] = [[t.token, [list(a) for a in t.top]] for t in self.logprobs] if self.logprobs else None
        return out

    @classmethod
    def from_json(cls, row: dict) -> "BatchRow":
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in row.items() if k in names}
        for k in ("prompt_token_ids", "token_ids", "token_logprobs"):
            if data.get(k) is not None:
                data[k] = tuple(data[k])
        if data.get("logprobs"):
            data["logprobs"] = tuple(TokenLogprob(t, tuple((a, lp) for a, lp in top)) for t, top in data["logprobs"])
        return cls(**data)


@dataclass(frozen=True)
class MeterStats:
    """Requests, tokens and load of one role of an arena (a competitor, or the judge)."""

    requests: int = 0
    completion_tokens: int = 0
    busy_s: float = 0.0           # wall time between the first request sent and the last answer received
    tokens_per_s: float = 0.0
    mean_in_flight: float = 0.0   # time-weighted requests in flight over busy_s
    capacity: int = 1
    in_flight: int = 0
    retries: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Progress:
    """What an arena run has done so far (the coordinator's progress events, and its final summary)."""

    generations_total: int = 0
    generations_done: int = 0
    games_total: int = 0
    games_done: int = 0
    games_failed: int = 0
    parse_failures: int = 0
    cache_hits: int = 0           # judge verdicts taken from the judgment cache (judge.cache_dir)
    cache_misses: int = 0         # judge requests made and then cached
    meters: dict[str, MeterStats] = field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
