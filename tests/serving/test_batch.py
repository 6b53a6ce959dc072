"""Resumable request batches: answers stream to a file; a re-run asks only for what is missing; failures and
rejected answers are retried up to max_attempts, then left recorded as failed."""
from __future__ import annotations

import asyncio
import json

from arena_ray.records import ChatMessage, Completion, GenerationRequest, SamplingSpec
from arena_ray.serving.batch import BatchItem, read_rows, run_batch


class Scripted:
    def __init__(self, fail_first: set[str] = frozenset(), garbage: set[str] = frozenset()):
        self.calls: list[str] = []
        self.fail_first, self.garbage = set(fail_first), set(garbage)

    async def generate(self, request: GenerationRequest) -> Completion:
        self.calls.append(request.request_id)
        key = request.messages[0].content
        if key in self.fail_first:
            self.fail_first.discard(key)
            raise ConnectionError("replica died")
        text = "nothing" if key in self.garbage else f"Score: 3 for {key} seed {request.sampling.seed}"
        return Completion(text, 1, 3, "stop", 0.0)


def items(n):
    return [BatchItem(f"k{i}", GenerationRequest(f"r{i}", (ChatMessage("user", f"k{i}"),), SamplingSpec(8, seed=1)))
            for i in range(n)]


def accept(c):
    return "" if "Score" in c.text else "no score"


def run(client, out, n=4, **kw):
    return asyncio.run(run_batch(client, items(n), out, max_in_flight=2, timeout_s=5, max_attempts=3,
                                 accept=accept, show=False, **kw))


def test_retries_then_resume_asks_only_for_the_missing(tmp_path):
    out = tmp_path / "rows.jsonl"
    client = Scripted(fail_first={"k1"}, garbage={"k3"})
    done = run(client, out)
    assert sorted(done) == ["k0", "k1", "k2"]                    # k3 never gave a score
    assert client.calls.count("r1") == 2                               # a failed request is sent again as it was
    assert "seed 1" in done["k1"].text                                 # (a transport failure is not an answer)
    assert "r3-a1" in client.calls and "r3-a2" in client.calls         # a rejected answer is asked anew ...
    rows = read_rows(out)
    assert sum(r.key == "k3" and not r.ok and not r.failed_request for r in rows) == 3   # ... three times, recorded
    assert [r.failed_request for r in rows if r.key == "k1"] == [True, False]          # the failure is recorded too
    again = Scripted()
    assert run(again, out) == done and again.calls == []             # nothing asked twice; k3 exhausted
    more = Scripted()
    assert sorted(run(more, out, n=6)) == ["k0", "k1", "k2", "k4", "k5"] and len(more.calls) == 2


def test_a_torn_last_line_is_ignored(tmp_path):
    out = tmp_path / "rows.jsonl"
    run(Scripted(), out, n=2)
    with out.open("a") as fh:
        fh.write(json.dumps({"key": "k9", "ok": True})[:10])
    assert len(read_rows(out)) == 2


class Dead:
    def __init__(self, recover_after: int):
        self.calls, self.recover_after = 0, recover_after

    async def generate(self, request):
        self.calls += 1
        if self.calls <= self.recover_after:
            raise ConnectionError("engine dead")
        return Completion("Score: 4", 1, 2, "stop", 0.0)


def test_failed_requests_back_off_and_do_not_use_up_attempts(tmp_path):
    # Four failures in a row (a replica being replaced) and the item still gets its answer with max_attempts 1.
    done = asyncio.run(run_batch(Dead(recover_after=4), items(1), tmp_path / "a.jsonl", max_in_flight=1, timeout_s=5,
                                 max_attempts=1, accept=accept, show=False, backoff_s=0.01))
    assert done["k0"].text == "Score: 4"
    # A replica that never comes back: given up after max_failures, recorded.
    dead = Dead(recover_after=100)
    assert asyncio.run(run_batch(dead, items(1), tmp_path / "b.jsonl", max_in_flight=1, timeout_s=5, max_attempts=3,
                                 accept=accept, show=False, backoff_s=0.01, max_failures=3)) == {}
    assert dead.calls == 3 and all(r.failed_request for r in read_rows(tmp_path / "b.jsonl"))
