"""Named admin tokens (the `admin_tokens:` section of tiergate.yaml); gateway/admin/tokens.py
checks requests against them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gateway.config.base import StrictModel

Access = Literal["read-only", "read-write"]
AdminTokenName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
ONE_SOURCE = "give exactly one of token_sha256 and token_env"


class AdminTokenConfig(StrictModel):
    access: Access = Field("read-only", description="read-only (GET, HEAD) or read-write.")
    token_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 hex digest of the token (`printf %s TOKEN | sha256sum`).",
    )
    token_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]{0,127}$",
        description="Name of the environment variable holding the token.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AdminTokenConfig:
        if (self.token_sha256 is None) == (self.token_env is None):
            raise ValueError(ONE_SOURCE)
        return self
