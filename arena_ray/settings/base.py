"""The base of every settings section: unknown keys are errors, values are frozen after validation, and each
field's docstring is its one-line meaning (shown in configs/reference.yaml)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)
