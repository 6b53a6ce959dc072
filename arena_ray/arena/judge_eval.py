"""A judge measured against people. The configured judge (same deployment, template, sampling, answer cut and
parsing as the arena's) judges human-labelled pairs in both orders; the two games combine into the verdict an
arena battle would record, and the card (judging/card.py) says how often it agrees with people.

Resumable: every verdict is appended to `<dir>/judgments.jsonl` as it arrives (serving/batch.py), a re-run
asks only for what is missing. Cards are cached by fingerprint (the judge's identity, the template, the data),
so a judge already measured costs an arena nothing.

<dir>/judgments.jsonl    the judge's raw completions (key `<pair id>#<0|1>`, 0: answer a shown first)
<dir>/judge_eval.parquet one row per pair: id, human, verdict, verdict_ab, verdict_ba, score_a, score_b
<dir>/judge_card.json    the card (+ judge_card.md)

A judge panel: every member judges every pair (`judgments.<member>.jsonl`, `judge_eval.<member>.parquet`);
judge_eval.parquet and the card are the panel's (members combined by `judge.panel_rule`, as the arena does),
and the card lists each member's own under "members".
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pyarrow as pa

from arena_ray.arena.scheduler import JudgeSettings, ModelClient
from arena_ray.data.preferences import SHIPPED, load_card_pairs
from arena_ray.judging import card as cards
from arena_ray.judging.parse import parse_pairwise
from arena_ray.judging.prompts import cut_answer
from arena_ray.judging.verdict import judgment_from
from arena_ray.records import Completion, GenerationRequest, HumanPair, Judgment
from arena_ray.records.tables import write_atomic
from arena_ray.serving.batch import BatchItem, run_batch
from arena_ray.serving.retry import RetryPolicy
from arena_ray.settings import Config
from arena_ray.settings.config import identity_hash

EVAL_SCHEMA = pa.schema([("id", pa.string()), ("human", pa.string()), ("verdict", pa.string()),
                         ("verdict_ab", pa.string()), ("verdict_ba", pa.string()), ("score_a", pa.float64()),
                         ("score_b", pa.float64())])


def fingerprint(config: Config, files: Optional[Sequence[str]], limit: Optional[int]) -> str:
    """The card's identity: the judge (every setting that changes a verdict), and the data by content."""
    data = [(Path(f).name, hashlib.sha256(Path(f).read_bytes()).hexdigest()) for f in (files or [SHIPPED])]
    return identity_hash({"judge": config.judge_identity(), "data": data, "limit": limit})


def requests(pairs: Sequence[HumanPair], js: JudgeSettings) -> list[BatchItem]:
    """Two games per pair: position 0 shows answer a first, position 1 shows b first."""
    items = []
    for p in pairs:
        a, b = cut_answer(p.response_1, js.max_answer_chars), cut_answer(p.response_2, js.max_answer_chars)
        for position, shown in ((0, (a, b)), (1, (b, a))):
            items.append(BatchItem(f"{p.pair_id}#{position}", GenerationRequest(
                f"card-{p.pair_id}-{position}", js.template.messages(p.instruction, *shown), js.sampling)))
    return items


def unparsed(score_line: str):
    """The batch's check: '' when a verdict has both scores (the arena's parser), else the reason it is asked
    again."""
    def check(c: Completion) -> str:
        v = parse_pairwise(c.text, score_line)
        return "" if v.ok else (v.error or "no score line")
    return check


Games = dict[str, dict[int, Judgment]]   # pair id → position → its parsed game


def games_from(pairs: Sequence[HumanPair], completions: dict[str, Completion], js: JudgeSettings) -> Games:
    out: Games = {}
    for p in pairs:
        out[p.pair_id] = {}
        for position in (0, 1):
            c = completions.get(f"{p.pair_id}#{position}")
            if c is None:
                continue
            base = dict(battle_id=p.pair_id, instruction_id=p.pair_id, model_a="a", model_b="b", position=position,
                        attempt=0, judge=js.name, prompt_version=js.template.version)
            game = judgment_from(c, base, position, js.template.score_line)
            if game.parse_ok:
                out[p.pair_id][position] = game
    return out


def items_from(pairs: Sequence[HumanPair], games: Games, config: Config) -> list[cards.JudgeItem]:
    j = config.judge
    return [cards.item_from(p, games[p.pair_id], disagreement=j.disagreement, tie_margin=j.tie_margin,
                            use_weighted=j.logprob_weighted) for p in pairs]


def panel_items(pairs: Sequence[HumanPair], games: dict[str, Games], config: Config) -> list[cards.JudgeItem]:
    j = config.judge
    return [cards.panel_item_from(p, {m: g[p.pair_id] for m, g in games.items()}, rule=j.panel_rule,
                                  disagreement=j.disagreement, tie_margin=j.tie_margin,
                                  use_weighted=j.logprob_weighted) for p in pairs]


def evaluate(config: Config, js: JudgeSettings, client: ModelClient, retry: RetryPolicy,
             pairs: Sequence[HumanPair], path: Path, show: bool = True) -> Games:
    """Judge every pair in both orders (resuming what `path` already holds)."""
    rows = asyncio.run(run_batch(client, requests(pairs, js), path,
                                 max_in_flight=js.max_in_flight or client.capacity, timeout_s=retry.timeout_s,
                                 max_attempts=js.max_attempts, accept=unparsed(js.template.score_line),
                                 desc=f"judge card ({js.name})", show=show, max_failures=retry.max_retries + 1,
                                 backoff_s=retry.backoff_s, retry_temperature=js.retry_temperature))
    return games_from(pairs, {k: r.completion() for k, r in rows.items()}, js)


def write_items(path: Path, items: Sequence[cards.JudgeItem]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(i) for i in items]
    write_atomic(pa.table({c: [r[c] for r in rows] for c in EVAL_SCHEMA.names}, schema=EVAL_SCHEMA), path)


def write(out_dir: Path, items: Sequence[cards.JudgeItem], card: dict) -> None:
    write_items(out_dir / "judge_eval.parquet", items)
    save_card(out_dir / "judge_card.json", card)
    (out_dir / "judge_card.md").write_text(cards.to_markdown(card, f"Judge card: {card.get('judge', '')}"))


def save_card(path: Path, card: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)  # atomic: a shared cache on a cluster never shows half a card


def load_card(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # a torn cache entry is measured again


def measure(config: Config, js: JudgeSettings, clients: Mapping[str, ModelClient], retry: RetryPolicy,
            files: Optional[Sequence[str]], limit: Optional[int], out_dir: Path, show: bool = True) -> dict:
    """The card of the configured judge (or panel: `clients` by member) on `files` (null: the shipped pairs),
    written to `out_dir` and to the card cache."""
    pairs = load_card_pairs(files, limit)
    head = {"judge": config.judge.model, "template": js.template.version,
            "fingerprint": fingerprint(config, files, limit), "data": [str(f) for f in (files or [SHIPPED.name])]}
    if not config.judge.panel:
        items = items_from(pairs, evaluate(config, js, clients[js.name], retry, pairs, out_dir / "judgments.jsonl",
                                           show), config)
        card = {**head, **cards.card(items)}
    else:
        games = {m: evaluate(config, replace(js, name=m), clients[m], retry, pairs,
                             out_dir / f"judgments.{_slug(m)}.jsonl", show) for m in config.judge.panel}
        members = {}
        for m, g in games.items():
            member_items = items_from(pairs, g, config)
            write_items(out_dir / f"judge_eval.{_slug(m)}.parquet", member_items)
            members[m] = cards.card(member_items)
        items = panel_items(pairs, games, config)
        card = {**head, "judge": "panel", "panel_rule": config.judge.panel_rule, **cards.card(items),
                "members": members}
    write(out_dir, items, card)
    save_card(Path(config.judge.card_cache_dir) / f"{card['fingerprint']}.json", card)
    return card


def cached(config: Config) -> Optional[dict]:
    """The configured judge's card from the cache, if it was measured on the configured card data."""
    j = config.judge
    return load_card(Path(j.card_cache_dir) / f"{fingerprint(config, j.card_data, j.card_limit)}.json")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def for_run(config: Config, js: JudgeSettings, clients: Mapping[str, ModelClient], retry: RetryPolicy,
            run_dir: Path, show: bool = True) -> Optional[dict]:
    """The judge's card for an arena run (run_dir/judge_card.json): kept from an earlier pass of the run, taken
    from the cache, or measured now on `judge.card_data` (under run_dir/judge_card/, resumable)."""
    j, path = config.judge, run_dir / "judge_card.json"
    if not j.card:
        return None
    card = load_card(path) or cached(config) or measure(config, js, clients, retry, j.card_data, j.card_limit,
                                                         run_dir / "judge_card", show)
    save_card(path, card)
    return card
