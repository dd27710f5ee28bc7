"""The catalogue's session table is created once when several nodes start together on
one PostgreSQL registry (CREATE TABLE IF NOT EXISTS alone races in PostgreSQL's catalogue)."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from gateway.catalogue.sessions import SessionStore
from gateway.registry import Registry
from tests.support.databases import postgres_database


async def _start_together(url: str, nodes: int) -> list[str]:
    registries = [Registry.from_url(url) for _ in range(nodes)]
    try:
        await asyncio.gather(*(SessionStore(r.engine).start() for r in registries))
        async with registries[0].engine.connect() as conn:
            return await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await asyncio.gather(*(r.aclose() for r in registries))


def test_nodes_starting_together_create_the_session_table_once():
    for _ in range(3):
        with postgres_database("sessions") as url:
            assert "catalogue_sessions" in asyncio.run(_start_together(url, 8))
