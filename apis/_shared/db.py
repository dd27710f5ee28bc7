"""One async SQLAlchemy Core database per tier API: SQLite by default, PostgreSQL by URL.

Each API reads `TIERGATE_<API>_DB_URL` (for example `TIERGATE_CUSTOMERS_DB_URL`);
without it the API keeps a SQLite file under `var/` (`TIERGATE_VAR_DIR` moves it).
`sqlite:///` and `postgresql://` URLs get their async drivers (aiosqlite, asyncpg).

Writes go through `Database.write()`: one transaction that, on SQLite, takes the write
lock up front (`BEGIN IMMEDIATE`) so concurrent writers queue instead of failing.
Schema creation is safe when several processes start at once (an advisory lock on
PostgreSQL, a retry on SQLite).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_WRITE_OPTION = "tiergate_write"


def var_dir() -> Path:
    path = Path(os.environ.get("TIERGATE_VAR_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(api: str) -> str:
    """The URL for one API's database: from env, else a SQLite file under var/."""
    env_name = "TIERGATE_" + re.sub(r"[^A-Z0-9]", "_", api.upper()) + "_DB_URL"
    url = os.environ.get(env_name)
    if url:
        return url
    return f"sqlite+aiosqlite:///{var_dir() / f'{api}.db'}"


def async_url(url: str) -> str:
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql:", "postgres:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str, metadata: MetaData) -> None:
        self.url = async_url(url)
        self.metadata = metadata
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_sqlite_dir(self.url)
            self.engine: AsyncEngine = create_async_engine(self.url, connect_args={"timeout": 30})
            _use_explicit_sqlite_transactions(self.engine)
        else:
            self.engine = create_async_engine(self.url, pool_size=10, max_overflow=10)

    async def create_schema(self) -> None:
        for attempt in range(5):
            try:
                async with self.write() as conn:
                    await self.lock(conn, "schema")
                    await conn.run_sync(self.metadata.create_all)
                return
            except DBAPIError:
                # Another process created the same table between check and create.
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))

    async def lock(self, conn: AsyncConnection, name: str) -> None:
        """Serialise a write transaction against others taking the same lock (e.g. seeding).

        SQLite write transactions are serialised already (BEGIN IMMEDIATE); PostgreSQL
        takes a transaction-scoped advisory lock.
        """
        if not self.is_sqlite:
            lock = text("SELECT pg_advisory_xact_lock(hashtext(:name))")
            await conn.execute(lock, {"name": name})

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block ends, rolled back on an exception."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    async def is_seeded(self, column: Column[Any], last_key: str) -> bool:
        """Whether the row seeding inserts last is there (so seeding has completed)."""
        async with self.read() as conn:
            found = await conn.execute(select(column).where(column == last_key).limit(1))
            return found.first() is not None

    async def insert_ignoring_duplicates(
        self, conn: AsyncConnection, table: Table, rows: Iterable[Mapping[str, Any]]
    ) -> None:
        """Insert rows, skipping those whose unique keys already exist (idempotent seeding)."""
        rows = list(rows)
        if not rows:
            return
        dialect = sqlite if self.is_sqlite else postgresql
        await conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _use_explicit_sqlite_transactions(engine: AsyncEngine) -> None:
    """Let SQLAlchemy emit BEGIN itself: IMMEDIATE for writes, DEFERRED for reads."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes with WAL
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
