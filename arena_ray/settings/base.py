"""The base of every settings section: unknown keys are errors, values are frozen after validation, and each
field's docstring is its one-line meaning (shown in configs/reference.yaml)."""
from __future__ import annotations

import types
from typing import Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _numeric(annotation) -> bool:
    """int or float (or Optional of one), and not bool: a field YAML's true/false must not become 1/0."""
    kinds = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return bool({int, float} & set(kinds)) and bool not in kinds


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value, info: ValidationInfo):
        if isinstance(value, bool) and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"a number is expected, not {str(value).lower()}")
        return value
