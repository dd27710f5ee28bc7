"""Each system API on a real uvicorn server, once over SQLite and once over PostgreSQL.

PostgreSQL databases are created per test session (`tg_system_<api>_<random>`) and
dropped at its end; SQLite files live in the session's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from apis.system import customers, inventory, orders
from tests.support.servers import serve_asgi

POSTGRES_URL = os.environ.get("TIERGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FACTORIES: dict[str, Callable] = {
    "customers": customers.create_app,
    "orders": orders.create_app,
    "inventory": inventory.create_app,
}


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Backend:
    """Hands out one database URL per API for one backend, and cleans them up."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.created: list[str] = []

    def url_for(self, api: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite+aiosqlite:///{self.directory / f'{api}-{secrets.token_hex(3)}.db'}"
        name = f"tg_system_{api}_{secrets.token_hex(4)}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return (
            POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql:", "postgresql+asyncpg:")
            + f"/{name}"
        )

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    backend = Backend(request.param, tmp_path_factory.mktemp(f"system-{request.param}"))
    try:
        yield backend
    finally:
        backend.drop_all()


def _serve(backend: Backend, api: str) -> Iterator[str]:
    with serve_asgi(FACTORIES[api](backend.url_for(api))) as server:
        yield server.url


@pytest.fixture(scope="session")
def customers_url(backend: Backend) -> Iterator[str]:
    yield from _serve(backend, "customers")


@pytest.fixture(scope="session")
def orders_url(backend: Backend) -> Iterator[str]:
    yield from _serve(backend, "orders")


@pytest.fixture(scope="session")
def inventory_url(backend: Backend) -> Iterator[str]:
    yield from _serve(backend, "inventory")


@pytest.fixture
def customers_api(customers_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=customers_url, timeout=10) as client:
        yield client


@pytest.fixture
def orders_api(orders_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=orders_url, timeout=10) as client:
        yield client


@pytest.fixture
def inventory_api(inventory_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=inventory_url, timeout=10) as client:
        yield client


def walk(client: httpx.Client, path: str, **params: object) -> list[dict]:
    """Every item of a paginated list, following next_cursor (bounded)."""
    items: list[dict] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body
