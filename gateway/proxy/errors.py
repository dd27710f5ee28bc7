"""Upstream failures, and the one place they become client responses."""

from __future__ import annotations

import math

from gateway.problem import ProblemResponse

UPSTREAM_REFUSED = "The upstream service of API '{api}' could not be reached."
UPSTREAM_TIMEOUT = "The upstream service of API '{api}' did not answer in time."
UPSTREAM_INVALID = "The upstream service of API '{api}' sent an invalid response."
UPSTREAM_UNAVAILABLE = (
    "Every upstream target of API '{api}' is failing; try again in {retry_after} seconds."
)


class UpstreamError(Exception):
    """Base of every failure a transport reports. Transports raise only these."""

    status = 502
    template = UPSTREAM_INVALID


class UpstreamConnectError(UpstreamError):
    status = 502
    template = UPSTREAM_REFUSED


class UpstreamTimeout(UpstreamError):
    status = 504
    template = UPSTREAM_TIMEOUT


class UpstreamProtocolError(UpstreamError):
    status = 502
    template = UPSTREAM_INVALID


class NoHealthyTarget(UpstreamError):
    status = 503
    template = UPSTREAM_UNAVAILABLE

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"all targets ejected; retry after {retry_after:.1f}s")
        self.retry_after = max(1, math.ceil(retry_after))


def problem_for(error: UpstreamError, api: str) -> ProblemResponse:
    if isinstance(error, NoHealthyTarget):
        return ProblemResponse(
            error.status,
            error.template.format(api=api, retry_after=error.retry_after),
            headers=[("retry-after", str(error.retry_after))],
        )
    return ProblemResponse(error.status, error.template.format(api=api))
