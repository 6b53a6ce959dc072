"""A judgment cache shared between runs: the judge's completion for a request, keyed by the judge's identity,
the prompt template version, the instruction and the hashes of both answers in the order shown, and the
sampling (a re-asked game samples with another seed, so it has a key of its own). A run that meets the same
judge, template and answers again takes the verdict from here instead of calling the judge. Pure file I/O.

Layout: <cache_dir>/<key[:2]>/<key>.json, each written atomically (a shared directory on a cluster).
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from arena_ray.records import Completion, SamplingSpec, TokenLogprob


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class JudgmentCache:
    def __init__(self, cache_dir: str | Path, judge_identity: str, template_version: str):
        self.root = Path(cache_dir)
        self.judge, self.template = judge_identity, template_version

    def key(self, instruction: str, answer_first: str, answer_second: str, sampling: SamplingSpec,
            judge: str = "") -> str:
        """`judge`: the panel member asking (""; one judge)."""
        parts = [self.judge, self.template, _sha(instruction), _sha(answer_first), _sha(answer_second),
                 asdict(sampling)] + ([judge] if judge else [])
        return _sha(json.dumps(parts, sort_keys=True))

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[Completion]:
        try:
            data = json.loads(self._path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError, OSError):
            return None  # a torn or foreign file is a miss: the judge is asked again and the entry rewritten
        logprobs = data.pop("logprobs")
        return Completion(**data, logprobs=tuple(TokenLogprob(t, tuple((a, lp) for a, lp in top))
                                                 for t, top in logprobs) if logprobs else None)

    def put(self, key: str, completion: Completion) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"text": completion.text, "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens, "finish_reason": completion.finish_reason,
                "latency_s": completion.latency_s,
                "logprobs": [[t.token, [list(a) for a in t.top]] for t in completion.logprobs]
                if completion.logprobs else None}
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
