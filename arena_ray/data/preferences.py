"""Human-labelled preference pairs: PandaLM's test set (`instruction`, `input`, `response1`, `response2`,
`annotator1..3` with 0 = tie, 1 = response1 better, 2 = response2 better); the label is the annotators' majority.
A malformed record is an InputError naming the file, the record and the field."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.errors import InputError
from arena_ray.records import HumanPair


def majority(labels: Sequence[int]) -> Optional[int]:
    value, count = Counter(labels).most_common(1)[0]
    return value if count * 2 > len(labels) else None


def load_pandalm(path: str | Path, offset: int = 0, limit: Optional[int] = None) -> list[HumanPair]:
    """Records [offset, offset+limit) with a majority label; a malformed record is named by index and field."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of records")
    out: list[HumanPair] = []
    for i, rec in enumerate(records[offset:offset + limit if limit else None], start=offset):
        where = f"{path}[{i}]"
        for key in ("instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"):
            if key not in rec:
                raise InputError(f"{where}: missing field '{key}'")
        labels = [rec[f"annotator{k}"] for k in (1, 2, 3)]
        if any(v not in (0, 1, 2) for v in labels):
            raise InputError(f"{where}: annotator labels must be 0, 1 or 2, got {labels}")
        label = majority(labels)
        if label is None:
            continue
        text = rec["instruction"] + (f"\n\n{rec['input']}" if rec.get("input") else "")
        out.append(HumanPair(str(rec.get("idx", i)), text, rec["response1"], rec["response2"],
                             {0: 0, 1: 1, 2: -1}[label]))
    return out
