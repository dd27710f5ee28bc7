"""The plugin's own tests, with the gateway's testing helpers (no server needed)."""

import pytest
from pydantic import ValidationError
from tiergate_example_policy import SPEC

from gateway.testing import build_policy, request_context, validate_policy_config


def test_default_value_is_on() -> None:
    assert validate_policy_config(SPEC, {}).value == "on"


def test_header_unsafe_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        validate_policy_config(SPEC, {"value": "on\r\nset-cookie: x"})


async def test_adds_the_header() -> None:
    policy = build_policy(SPEC, {"value": "beta"})
    assert policy is not None
    ctx = request_context()
    assert await policy(ctx) is None
    assert (b"x-example-policy", b"beta") in ctx.response_headers
