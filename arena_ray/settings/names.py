"""What a model may be called. Config names become Serve application names, routes and file names; names read
from battle files become board rows. One rule for both, checked at config load and at battle import."""
from __future__ import annotations

from typing import Optional

MAX_NAME = 128


def name_problem(name: object, in_config: bool = False) -> Optional[str]:
    """Why `name` is not a usable model name, or None. A config name also may not hold a path separator."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long (at most {MAX_NAME})"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a control character (a newline, a tab, …)"
    if name != name.strip():
        return "starts or ends with whitespace"
    if in_config and any(c in name for c in "/\\"):
        return "holds a path separator ('/' or '\\')"
    return None
