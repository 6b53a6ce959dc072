"""Many independent requests to one served model, resumable: every answer is appended to a JSONL file as it
arrives, and a re-run asks only for what is missing. An answer the caller rejects (`accept`, e.g. no parsable
score) is asked again in the next round, up to `max_attempts`. A failed request (a dead replica, a timeout)
does not use up an attempt: it is retried after an exponential backoff (long enough for Serve's health check
to replace a dead replica and the new one to start its engine), up to `max_failures` times."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from tqdm import tqdm

from arena_ray.records import Completion, GenerationRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchItem:
    key: str
    request: GenerationRequest


def read_rows(path: Path) -> list[dict]:
    """Rows of a results file; a torn last line (a crash mid-write) is ignored, a torn earlier line is an error."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: ignoring a half-written last line", path)
                continue
            raise ValueError(f"{path}:{i + 1}: not valid JSON") from None
    return rows


def settled(rows: list[dict]) -> tuple[dict[str, dict], dict[str, int], dict[str, int]]:
    """The accepted row of each key; answers made per key; failed requests per key."""
    done, attempts, failures = {}, {}, {}
    for row in rows:
        counter = failures if row.get("failed_request") else attempts
        counter[row["key"]] = counter.get(row["key"], 0) + 1
        if row["ok"]:
            done.setdefault(row["key"], row)
    return done, attempts, failures


def _row(item: BatchItem, attempt: int, completion: Optional[Completion], error: str, ok: bool) -> dict:
    row = {"key": item.key, "attempt": attempt, "ok": ok, "error": error, "text": None, "weight_version": None,
           "failed_request": completion is None}
    if completion is not None:
        row.update(text=completion.text, completion_tokens=completion.completion_tokens,
                   weight_version=completion.weight_version,
                   prompt_token_ids=list(completion.prompt_token_ids) if completion.prompt_token_ids else None,
                   token_ids=list(completion.token_ids) if completion.token_ids is not None else None,
                   token_logprobs=list(completion.token_logprobs) if completion.token_logprobs else None,
                   logprobs=[[t.token, [list(a) for a in t.top]] for t in completion.logprobs]
                   if completion.logprobs else None)
    return row


async def run_batch(client, items: list[BatchItem], out: Path, *, max_in_flight: int, timeout_s: float,
                    max_attempts: int, accept: Callable[[Completion], str] = lambda c: "",
                    desc: str = "requests", show: bool = True, max_failures: int = 8,
                    backoff_s: float = 2.0) -> dict[str, dict]:
    """`accept` returns "" for a good answer, else the reason it is not (recorded; the item is asked again)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    limit = asyncio.Semaphore(max_in_flight)
    done, attempts, failures = settled(read_rows(out))
    bar = tqdm(total=len(items), initial=sum(i.key in done for i in items), desc=desc, unit="req", disable=not show)
    with out.open("a") as fh:
        async def one(item: BatchItem, attempt: int) -> None:
            request = item.request
            if attempt and request.sampling is not None:  # a new seed, so a deterministic model can answer anew
                request = replace(request, request_id=f"{request.request_id}-a{attempt}",
                                  sampling=replace(request.sampling, seed=(request.sampling.seed or 0) + 7919 * attempt))
            async with limit:
                try:
                    completion = await asyncio.wait_for(client.generate(request), timeout_s)
                    reason = accept(completion)
                    row = _row(item, attempt, completion, reason, not reason)
                except Exception as err:  # a failed request: retried after a backoff, not counted as an attempt
                    row = _row(item, attempt, None, f"{type(err).__name__}: {err}"[:500], False)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            if row["ok"]:
                done[item.key] = row
                bar.update()
            counter = failures if row["failed_request"] else attempts
            counter[item.key] = counter.get(item.key, 0) + 1

        def pending() -> list[BatchItem]:
            return [i for i in items if i.key not in done and attempts.get(i.key, 0) < max_attempts
                    and failures.get(i.key, 0) < max_failures]

        failed_rounds = 0
        while todo := pending():
            before = sum(failures.values())
            await asyncio.gather(*(one(i, attempts.get(i.key, 0) + failures.get(i.key, 0)) for i in todo))
            if sum(failures.values()) > before and pending():
                failed_rounds += 1
                await asyncio.sleep(min(backoff_s * 2 ** (failed_rounds - 1), 60.0))
    bar.close()
    failed = [i.key for i in items if i.key not in done]
    if failed:
        log.warning("%s: %d of %d requests gave no accepted answer (%d answers or %d failed requests each; "
                    "recorded in %s)", desc, len(failed), len(items), max_attempts, max_failures, out)
    return done
