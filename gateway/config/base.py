"""The base of every config model: unknown keys are mistakes, and a loaded config is frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are mistakes: refuse them instead of ignoring them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
