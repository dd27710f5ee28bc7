"""Upstream failures, and the one place they become client responses."""

from __future__ import annotations

from gateway.problem import ProblemResponse

UPSTREAM_REFUSED = "The upstream service of API '{api}' could not be reached."
UPSTREAM_TIMEOUT = "The upstream service of API '{api}' did not answer in time."
UPSTREAM_INVALID = "The upstream service of API '{api}' sent an invalid response."
UPSTREAM_HEADERS_TOO_LARGE = (
    "The upstream service of API '{api}' sent response headers larger than the gateway accepts."
)
UPSTREAM_SATURATED = (
    "The upstream service of API '{api}' is handling as many requests as the gateway "
    "allows; try again in {retry_after} seconds."
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


class UpstreamHeadersTooLarge(UpstreamProtocolError):
    template = UPSTREAM_HEADERS_TOO_LARGE


class UpstreamSaturated(UpstreamError):
    """The gateway's own cap on requests in flight to a target: not the upstream's fault."""

    status = 503
    template = UPSTREAM_SATURATED

    def __init__(self, retry_after: int) -> None:
        super().__init__("every connection slot of the target is taken")
        self.retry_after = retry_after


def problem_for(error: UpstreamError, api: str) -> ProblemResponse:
    if isinstance(error, UpstreamSaturated):
        return ProblemResponse(
            error.status,
            error.template.format(api=api, retry_after=error.retry_after),
            headers=[("retry-after", str(error.retry_after))],
        )
    return ProblemResponse(error.status, error.template.format(api=api))
