"""Read judged battles for rating: FastChat arena JSONL, an arena_ray run directory, or the Vicuna-bench
GPT-4/GPT-3.5 review files (1-10 score per answer). Bad records raise InputError naming file and line."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping, Optional, Sequence

from arena_ray.data.ingest import iter_jsonl, json_records
from arena_ray.errors import InputError
from arena_ray.records import Battle, Instruction
from arena_ray.settings.names import name_problem

log = logging.getLogger(__name__)

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


@dataclass(frozen=True)
class BattleRow:
    model_a: str
    model_b: str
    winner: str
    question_id: str = ""
    text_a: Optional[str] = None
    text_b: Optional[str] = None
    tokens_a: Optional[int] = None
    tokens_b: Optional[int] = None
    prompt: Optional[str] = None                                # the first user turn, where known
    fields: tuple[tuple[str, object], ...] = ()                 # the record's other scalar fields (language, …)

    def triple(self) -> tuple[str, str, str]:
        return self.model_a, self.model_b, self.winner


@dataclass
class BattleFile:
    battles: list[BattleRow]
    self_battles_dropped: int = 0
    source: str = ""


def _last_assistant(conversation) -> tuple[Optional[str], Optional[int]]:
    if not isinstance(conversation, list):
        return None, None
    for turn in reversed(conversation):
        if isinstance(turn, dict) and turn.get("role") == "assistant":
            return turn.get("content"), turn.get("num_tokens")
    return None, None


def _row(record: object, where: str) -> BattleRow:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object")
    for name in ("model_a", "model_b", "winner"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise InputError(f"{where}: field '{name}' missing or not a string")
    if record["winner"] not in WINNERS:
        raise InputError(f"{where}: unknown winner label '{record['winner']}' (expected one of {list(WINNERS)})")
    model_a, model_b = (_model_name(record[k], where, k) for k in ("model_a", "model_b"))
    text_a, tok_a = _last_assistant(record.get("conversation_a"))
    text_b, tok_b = _last_assistant(record.get("conversation_b"))
    for side, text, tokens in (("conversation_a", text_a, tok_a), ("conversation_b", text_b, tok_b)):
        if text is not None and not isinstance(text, str):
            raise InputError(f"{where}: field '{side}': an assistant turn's content is not a string")
        if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0):
            raise InputError(f"{where}: field '{side}': num_tokens must be a count, got {tokens!r}")
    scalars = tuple((k, v) for k, v in record.items() if isinstance(v, (str, int, float, bool)) and k not in _CORE)
    return BattleRow(model_a, model_b, record["winner"], str(record.get("question_id", "")),
                     text_a, text_b, tok_a, tok_b, _first_user(record.get("conversation_a")), scalars)


_CORE = {"model_a", "model_b", "winner", "question_id"}


def _model_name(name: str, where: str, field: str) -> str:
    """The name without surrounding whitespace (the documented treatment: " a" and "a " are model "a", and
    read_jsonl warns how many were stripped); other bad names are errors."""
    problem = name_problem(name.strip())
    if problem:
        raise InputError(f"{where}: field '{field}': the model name {name[:40]!r} {problem}")
    return name.strip()


def _first_user(conversation) -> Optional[str]:
    if not isinstance(conversation, list):
        return None
    for turn in conversation:
        if isinstance(turn, dict) and turn.get("role") == "user" and isinstance(turn.get("content"), str):
            return turn["content"]
    return None


def fastchat_record(battle: Battle, instruction: Optional[Instruction],
                    answers: Mapping[str, Sequence[str]], language: Optional[str] = None) -> dict:
    """A battle as FastChat's cleaned battle records have it (`model_a, model_b, winner, judge, turn, anony,
    language, tstamp`, and `conversation_a/b` when `answers` holds each model's answer to every turn), plus our
    scores. `anony`: true, as the judge saw no names; `judge`: our judge's name where FastChat has a voter's id;
    `language`: the prompt's ISO 639-1 code (FastChat writes the language's English name)."""
    record = asdict(battle)
    turns = (instruction.user_turns if instruction is not None else ()) or ()
    record.update(turn=max(1, len(turns)), anony=True)
    if language:
        record["language"] = language
    if turns and all(len(answers.get(m, ())) == len(turns) for m in (battle.model_a, battle.model_b)):
        for side, model in (("conversation_a", battle.model_a), ("conversation_b", battle.model_b)):
            record[side] = [msg for user, answer in zip(turns, answers[model])
                            for msg in ({"role": "user", "content": user}, {"role": "assistant", "content": answer})]
    return record


def read_jsonl(path: Path) -> BattleFile:
    """Battles from FastChat's JSON lines or JSON array files, gzipped or not (and our battles.jsonl)."""
    rows, dropped, stripped = [], 0, 0
    for where, record in json_records(path, "battle records"):
        row = _row(record, where)
        stripped += (row.model_a != record["model_a"]) + (row.model_b != record["model_b"])
        if row.model_a == row.model_b:
            dropped += 1  # documented treatment: a self-battle says nothing about ratings
            continue
        rows.append(row)
    if stripped:
        log.warning("%s: %d model names had surrounding whitespace, stripped (\" a\" and \"a \" are \"a\")", path,
                    stripped)
    return BattleFile(rows, dropped, str(path))


def read_run_dir(run_dir: Path) -> BattleFile:
    """battles.jsonl plus each answer's text and token count from generations.parquet (for style control)."""
    import pyarrow.parquet as pq

    result = read_jsonl(run_dir / "battles.jsonl")
    gens_path = run_dir / "generations.parquet"
    if gens_path.exists():
        answers = {(g["instruction_id"], g["model"]): g for g in pq.read_table(gens_path).to_pylist()}

        def with_answers(b: BattleRow) -> BattleRow:
            ga, gb = answers.get((b.question_id, b.model_a)), answers.get((b.question_id, b.model_b))
            return replace(b, text_a=ga and ga["text"], tokens_a=ga and ga["completion_tokens"],
                           text_b=gb and gb["text"], tokens_b=gb and gb["completion_tokens"])

        result.battles = [with_answers(b) for b in result.battles]
    prompts_path = run_dir / "instructions.parquet"
    if prompts_path.exists():  # each battle's prompt and its category (e.g. arena-hard's topic cluster)
        prompts = {r["instruction_id"]: r for r in pq.read_table(prompts_path).to_pylist()}

        def with_prompt(b: BattleRow) -> BattleRow:
            inst = prompts.get(b.question_id)
            if inst is None:
                return b
            return replace(b, prompt=inst["text"], fields=b.fields + (("category", inst["category"]),
                                                                      ("source", inst["source"])))

        result.battles = [with_prompt(b) for b in result.battles]
    return result


def read_battles(path: str | Path) -> BattleFile:
    path = Path(path)
    if path.is_dir():
        if not (path / "battles.jsonl").exists():
            raise InputError(f"{path}: a run directory needs battles.jsonl")
        result = read_run_dir(path)
    elif path.is_file():
        result = read_jsonl(path)
    else:
        raise InputError(f"battles file not found: {path}")
    if not result.battles:
        raise InputError(f"{path}: no battles to rate" +
                         (f" ({result.self_battles_dropped} self-battles dropped)" if result.self_battles_dropped else ""))
    return result


def _answer_models(answers_dir: Path) -> dict[str, tuple[str, str]]:
    """answer_id → (model name, text), model names from model_id (e.g. 'vicuna-13b:20230322-clean-lang')."""
    files = sorted(answers_dir.glob("answer_*.jsonl")) if answers_dir.is_dir() else []
    if not files:
        raise InputError(f"{answers_dir}: no answer_*.jsonl files (the --answers folder of the reviews' answers)")
    out, where_of = {}, {}
    for path in files:
        for where, rec in iter_jsonl(path):
            if not isinstance(rec, dict):
                raise InputError(f"{where}: expected a JSON object")
            for name in ("answer_id", "model_id"):
                if not isinstance(rec.get(name), str) or not rec[name].strip():
                    raise InputError(f"{where}: field '{name}' missing or not a string")
            if rec["answer_id"] in out:
                raise InputError(f"{where}: answer_id '{rec['answer_id']}' already given at {where_of[rec['answer_id']]}")
            text = rec.get("text", "")
            out[rec["answer_id"]] = (rec["model_id"].replace(":", "-"), text if isinstance(text, str) else "")
            where_of[rec["answer_id"]] = where
    return out


REVIEW_SCORES = (-1.0, 10.0)  # FastChat's 1-10 review scale; -1: a review it could not parse


def _review_scores(rec: dict, where: str) -> tuple[float, float]:
    score = rec.get("score")
    ok = (isinstance(score, list) and len(score) == 2
          and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in score))
    if not ok or not all(REVIEW_SCORES[0] <= s <= REVIEW_SCORES[1] for s in score):  # NaN fails the range too
        raise InputError(f"{where}: field 'score' must be two numbers from {REVIEW_SCORES[0]:g} to "
                         f"{REVIEW_SCORES[1]:g}, got {score!r}")
    return float(score[0]), float(score[1])


def import_vicuna_reviews(reviews_dir: str | Path, answers_dir: str | Path) -> BattleFile:
    """Vicuna-bench pairwise reviews (`score: [s1, s2]`) → battles; answers resolve the model names."""
    reviews_dir, answers_dir = Path(reviews_dir), Path(answers_dir)
    answers = _answer_models(answers_dir)
    rows, dropped = [], 0
    for path in sorted(reviews_dir.rglob("*.jsonl")):
        for where, rec in iter_jsonl(path):
            if not isinstance(rec, dict):
                raise InputError(f"{where}: expected a JSON object")
            for key in ("answer1_id", "answer2_id"):
                if rec.get(key) not in answers:
                    raise InputError(f"{where}: field '{key}' ({rec.get(key)!r}) names no answer in {answers_dir}")
            (model_a, text_a), (model_b, text_b) = answers[rec["answer1_id"]], answers[rec["answer2_id"]]
            s1, s2 = _review_scores(rec, where)
            if model_a == model_b:
                dropped += 1
                continue
            winner = "model_a" if s1 > s2 else "model_b" if s2 > s1 else "tie"
            rows.append(BattleRow(model_a, model_b, winner, str(rec.get("question_id", "")), text_a, text_b))
    if not rows:
        raise InputError(f"{reviews_dir}: no reviews found")
    return BattleFile(rows, dropped, str(reviews_dir))
