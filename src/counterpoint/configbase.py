"""The base every config section inherits: strict (unknown keys fail), typed, documented."""

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def type_shorthand(value: Any) -> Any:
    """Let a discriminated section be written by its type alone: `loss: kl_cov` means
    `loss: {type: kl_cov}` (every other field at its default)."""
    return {"type": value} if isinstance(value, str) else value


TypeShorthand = BeforeValidator(type_shorthand)
"""Annotate a discriminated union with this to accept the shorthand."""
