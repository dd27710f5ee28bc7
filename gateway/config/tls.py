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


class UpstreamTLSConfig(BaseModel):
    """TLS toward an API's `https://` targets: a private CA, a client certificate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca: str | None = Field(
        None,
        description="PEM bundle of the CAs trusted for the targets' certificates, relative to "
        "the config file; default: the system's CAs.",
    )
    cert: str | None = Field(
        None, description="PEM client certificate (chain) the gateway presents to the targets."
    )
    key: str | None = Field(None, description="PEM private key of `cert`.")
    server_name: str | None = Field(
        None,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
        description="Name sent in SNI and checked against the targets' certificates, when "
        "it differs from the host in the target URLs.",
    )

    @model_validator(mode="after")
    def _pair(self) -> UpstreamTLSConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give cert and key together (the client certificate and its key)")
        return self


__all__ = ["ListenerTLSConfig", "UpstreamTLSConfig"]
