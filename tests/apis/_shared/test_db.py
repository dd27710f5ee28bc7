"""Database URLs from env, and schema + seed when several processes start at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from apis._shared.db import Database, async_url, database_url
from apis.system.orders.store import SEED_ORDERS, metadata, order_lines, orders, seed_orders
from tests.apis.system.conftest import Backend

ROOT = Path(__file__).resolve().parents[3]
START = """
import asyncio, sys
from apis._shared.db import Database
from apis.system.orders.store import metadata, seed

async def main():
    db = Database(sys.argv[1], metadata)
    await db.create_schema()
    await seed(db)
    await db.dispose()

asyncio.run(main())
"""


def test_url_comes_from_env_or_a_sqlite_file_under_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    var = tmp_path / "nested" / "var"
    monkeypatch.setenv("TIERGATE_VAR_DIR", str(var))
    monkeypatch.delenv("TIERGATE_ORDER_FULFILMENT_DB_URL", raising=False)
    assert database_url("order-fulfilment") == f"sqlite+aiosqlite:///{var}/order-fulfilment.db"
    assert var.is_dir()
    monkeypatch.setenv("TIERGATE_ORDER_FULFILMENT_DB_URL", "postgresql://h/db")
    assert database_url("order-fulfilment") == "postgresql://h/db"
    assert async_url("postgresql://h/db") == "postgresql+asyncpg://h/db"
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    backend = Backend(request.param, tmp_path)
    try:
        yield backend.url_for("orders")
    finally:
        backend.drop_all()


def test_several_processes_create_and_seed_one_database_once(fresh_url: str) -> None:
    starts = [
        subprocess.Popen([sys.executable, "-c", START, fresh_url], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for process in starts:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()

    async def count() -> tuple[int, int]:
        db = Database(fresh_url, metadata)
        try:
            async with db.read() as conn:
                order_count = (
                    await conn.execute(select(func.count()).select_from(orders))
                ).scalar()
                line_count = (
                    await conn.execute(select(func.count()).select_from(order_lines))
                ).scalar()
        finally:
            await db.dispose()
        return int(order_count or 0), int(line_count or 0)

    expected_lines = sum(len(lines) for _, lines in seed_orders())
    assert asyncio.run(count()) == (SEED_ORDERS, expected_lines)
