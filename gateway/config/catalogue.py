"""Catalogue settings (the `catalogue:` section of tiergate.yaml)."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import StrictModel


class CatalogueConfig(StrictModel):
    enabled: bool = Field(True, description="Serve /catalogue pages and JSON.")
    title: str = Field("Tiergate API catalogue", description="Heading of the catalogue pages.")
    internal_scope: str | None = Field(
        "catalogue:internal",
        description="A bearer token from the built-in issuer with this scope also sees "
        "internal (system and process) APIs; null turns that off.",
    )
    admin_sees_internal: bool = Field(
        True, description="A bearer equal to the admin token sees internal APIs."
    )
    anonymous_sees_internal: bool = Field(
        False, description="Everyone sees internal APIs (for a private network only)."
    )
