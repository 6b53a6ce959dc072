"""Many independent requests to one served model, resumable: every answer is appended to a JSONL file as it
arrives, and a re-run asks only for what is missing. An answer the caller rejects (`accept`, e.g. no parsable
score) is asked again in the next round, up to `max_attempts`. A failed request (a dead replica, a timeout)
does not use up an attempt: the retrying request path (retry.py) tries it again after an exponential backoff
long enough for Serve to replace the replica, up to `max_failures` times in all; each failure is recorded."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from tqdm import tqdm

from arena_ray.errors import InputError
from arena_ray.records import BatchRow, Completion, GenerationRequest
from arena_ray.serving.retry import RequestFailed, RetryPolicy, request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchItem:
    key: str
    request: GenerationRequest


def read_lines(path: Path) -> list[dict]:
    """Objects of a results file written line by line; a torn last line (a crash mid-write) is ignored, a torn
    earlier line is an error naming the line."""
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
            raise InputError(f"{path}:{i + 1}: not valid JSON") from None
    return rows


def read_rows(path: Path) -> list[BatchRow]:
    """The rows of a request batch's file."""
    rows = []
    for i, data in enumerate(read_lines(path)):
        try:
            rows.append(BatchRow.from_json(data))
        except (TypeError, ValueError, KeyError, AttributeError):
            raise InputError(f"{path}: row {i + 1} is not a request row") from None
    return rows


def settled(rows: list[BatchRow]) -> tuple[dict[str, BatchRow], dict[str, int]]:
    """The accepted row of each key, and the answers made per key (failed requests do not count)."""
    done, attempts = {}, {}
    for row in rows:
        if not row.failed_request:
            attempts[row.key] = attempts.get(row.key, 0) + 1
        if row.ok:
            done.setdefault(row.key, row)
    return done, attempts


async def run_batch(client, items: list[BatchItem], out: Path, *, max_in_flight: int, timeout_s: float,
                    max_attempts: int, accept: Callable[[Completion], str] = lambda c: "",
                    desc: str = "requests", show: bool = True, max_failures: int = 8,
                    backoff_s: float = 2.0, retry_temperature: Optional[float] = None) -> dict[str, BatchRow]:
    """`accept` returns "" for a good answer, else the reason it is not (recorded; the item is asked again,
    with a new seed and, when given, `retry_temperature`, as the arena re-asks its judge)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    limit = asyncio.Semaphore(max_in_flight)
    policy = RetryPolicy(timeout_s=timeout_s, max_retries=max_failures - 1, backoff_s=backoff_s)
    done, attempts = settled(read_rows(out))
    gave_up: set[str] = set()
    bar = tqdm(total=len(items), initial=sum(i.key in done for i in items), desc=desc, unit="req", disable=not show)
    with out.open("a") as fh:
        def write(row: BatchRow) -> None:
            fh.write(json.dumps(row.to_json()) + "\n")
            fh.flush()

        async def one(item: BatchItem, attempt: int) -> None:
            req = item.request
            if attempt and req.sampling is not None:  # a new seed, so a deterministic model can answer anew
                sampling = replace(req.sampling, seed=(req.sampling.seed or 0) + 7919 * attempt)
                if retry_temperature is not None:
                    sampling = replace(sampling, temperature=retry_temperature)
                req = replace(req, request_id=f"{req.request_id}-a{attempt}", sampling=sampling)

            def failed(err: BaseException, _: int) -> None:
                write(BatchRow.of(item.key, attempt, None, f"{type(err).__name__}: {err}"[:500]))

            async with limit:
                try:
                    completion = await request(client, req, policy, on_failure=failed)
                except RequestFailed:
                    gave_up.add(item.key)  # a re-run tries it again
                    return
            row = BatchRow.of(item.key, attempt, completion, accept(completion))
            write(row)
            attempts[item.key] = attempts.get(item.key, 0) + 1
            if row.ok:
                done[item.key] = row
                bar.update()

        while todo := [i for i in items if i.key not in done and i.key not in gave_up
                       and attempts.get(i.key, 0) < max_attempts]:
            await asyncio.gather(*(one(i, attempts.get(i.key, 0)) for i in todo))
    bar.close()
    failed = [i.key for i in items if i.key not in done]
    if failed:
        log.warning("%s: %d of %d requests gave no accepted answer (%d answers or %d failed requests each; "
                    "recorded in %s)", desc, len(failed), len(items), max_attempts, max_failures, out)
    return done
