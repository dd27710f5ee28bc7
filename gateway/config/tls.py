"""TLS of a listener (`listeners.public.tls`, `listeners.admin.tls`). Pure: the files are
read at start-up (gateway/tls.py), where a file that cannot be loaded stops it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_HSTS = 2 * 365 * 86400


class ListenerTLSConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: str = Field(
        description="PEM certificate chain (leaf first), relative to the config file. "
        "Reloaded with `key` on SIGHUP."
    )
    key: str = Field(description="PEM private key of `cert`, relative to the config file.")
    min_version: Literal["1.2", "1.3"] = Field("1.2", description="Oldest TLS version accepted.")
    hsts: int | None = Field(
        None,
        ge=0,
        le=MAX_HSTS,
        description="Strict-Transport-Security max-age in seconds on every response; off "
        "when absent.",
    )
    client_ca: str | None = Field(
        None,
        description="PEM bundle of the CAs whose client certificates are accepted (mTLS); "
        "relative to the config file.",
    )
    client_cert: Literal["optional", "required"] | None = Field(
        None,
        description="With client_ca: `required` (default) refuses a handshake without a valid "
        "client certificate; `optional` asks for one and verifies it when sent.",
    )

    @model_validator(mode="after")
    def _client_cert_needs_ca(self) -> ListenerTLSConfig:
        if self.client_cert is not None and self.client_ca is None:
            raise ValueError("@client_cert: client certificates need client_ca (a CA bundle)")
        return self

    @property
    def client_mode(self) -> str | None:
        """ "required", "optional", or None without client certificates."""
        if self.client_ca is None:
            return None
        return self.client_cert or "required"


__all__ = ["ListenerTLSConfig"]
