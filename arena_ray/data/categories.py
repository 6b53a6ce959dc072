"""Which category a battle belongs to, for boards per category (`arena-ray rate --by FIELD`,
`arena.categories`). A field the battle record carries (FastChat's `language`, `is_code`; an arena-hard run's
`category`, its topic cluster) is used as it is; three are derived from the prompt where the record lacks them:

- `prompt_length`: `short` (under 500 characters) or `long`;
- `coding`: `code` when the prompt asks about or shows code, else `no code` (FastChat's `is_code` if present);
- `language`: the prompt's language by py3langid (ISO 639-1), where the record names none.
"""
from __future__ import annotations

import re
from typing import Optional

from arena_ray.data.battles import BattleRow

DERIVED = ("prompt_length", "coding", "language")
LONG_PROMPT = 500
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+[:(]|#include\b|\bfunction\s*\w*\(|\bSELECT\b.+\bFROM\b|=>|"
                   r"\b(python|javascript|typescript|java|c\+\+|rust|golang|sql|regex|bash|script|code|compile|"
                   r"function|algorithm|api)\b", re.IGNORECASE | re.DOTALL)


def category_of(row: BattleRow, field: str) -> Optional[str]:
    """The battle's value of `field`, or None when neither the record nor its prompt can tell."""
    fields = dict(row.fields)
    if field == "coding" and "is_code" in fields:
        return "code" if fields["is_code"] else "no code"
    if field in fields and fields[field] not in (None, ""):
        return str(fields[field])
    if row.prompt is None or field not in DERIVED:
        return None
    if field == "prompt_length":
        return "long" if len(row.prompt) >= LONG_PROMPT else "short"
    if field == "coding":
        return "code" if _CODE.search(row.prompt) else "no code"
    from arena_ray.data.clean import language

    return language(row.prompt)[0]
