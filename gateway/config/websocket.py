"""`websocket:` of an API: RFC 6455 upgrades proxied to its targets, and their limits.
Pure: parses and checks, opens nothing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_MESSAGE = 16 * 1024 * 1024  # the listener's own frame limit (uvicorn's ws_max_size)


class WebSocketConfig(BaseModel):
    """`websocket: true` takes the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operations: list[str] | None = Field(
        None,
        description="Only these operations (operationId or `GET /template`) accept upgrades; "
        "default: every GET of the API.",
    )
    max_message_bytes: int = Field(
        1 << 20,
        ge=1,
        le=MAX_MESSAGE,
        description="Largest message either side may send; larger closes with 1009.",
    )
    idle_timeout: float = Field(
        300.0, gt=0, le=86400, description="Seconds without a message either way → close 1001."
    )
    max_connections_per_consumer: int = Field(
        10,
        ge=1,
        le=100_000,
        description="Open connections per consumer (per client address when anonymous) on "
        "each gateway node; more → 429 at the upgrade.",
    )


__all__ = ["WebSocketConfig"]
