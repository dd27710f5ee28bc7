from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import serve_httpbin


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    with serve_httpbin() as url:
        yield url
