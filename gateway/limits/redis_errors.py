"""redis's exception classes, imported on first use.

Importing redis (8.x) imports the OpenTelemetry SDK whenever it is installed: a gateway
on memory storage with tracing off needs neither, so no module of the limiter imports
redis when it is loaded (tests/observability/test_tracing_off.py).
"""

from __future__ import annotations

import functools


@functools.cache
def redis_error() -> type[Exception]:
    """redis.exceptions.RedisError."""
    # Imported here, not at the top: see the module docstring.
    from redis.exceptions import RedisError

    return RedisError


@functools.cache
def no_script_error() -> type[Exception]:
    """redis.exceptions.NoScriptError."""
    from redis.exceptions import NoScriptError

    return NoScriptError


@functools.cache
def response_error() -> type[Exception]:
    """redis.exceptions.ResponseError: an error reply (NOSCRIPT among them)."""
    from redis.exceptions import ResponseError

    return ResponseError
