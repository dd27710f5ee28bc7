from tests.limits.conftest import http

__all__ = ["http"]
