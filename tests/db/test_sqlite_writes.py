"""Write transactions on SQLite take turns in arrival order
(``SqliteWriteQueue``) instead of polling for the write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from scim_reconciler.db.engine import Database, SqliteWriteQueue, open_database
from scim_reconciler.db.migrate import prepare_database
from tests.conftest import make_settings

WRITERS = 8


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    database = await prepare_database(make_settings(url), run_migrations=True)
    try:
        yield database
    finally:
        await database.dispose()


def test_only_sqlite_queues_writers(tmp_path: Path) -> None:
    sqlite = open_database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    postgres = open_database("postgresql+asyncpg://postgres@127.0.0.1:5432/test")

    assert sqlite.sqlite_writers is not None
    assert postgres.sqlite_writers is None


async def test_writers_take_turns_in_arrival_order(database: Database) -> None:
    entered: list[int] = []
    active = 0
    max_active = 0

    async def write(number: int) -> None:
        nonlocal active, max_active
        async with database.write() as session:
            entered.append(number)
            active += 1
            max_active = max(max_active, active)
            await session.execute(
                text("UPDATE organizations SET name = name WHERE id = :id"),
                {"id": number},
            )
            await asyncio.sleep(0.01)
            active -= 1

    tasks = []
    for number in range(WRITERS):
        tasks.append(asyncio.create_task(write(number)))
        # Let the task reach the queue before the next one starts.
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)

    assert entered == list(range(WRITERS))
    assert max_active == 1


async def test_failed_writer_passes_the_turn(database: Database) -> None:
    with pytest.raises(ZeroDivisionError):
        async with database.write():
            raise ZeroDivisionError

    async with asyncio.timeout(5):
        async with database.write() as session:
            await session.execute(text("SELECT 1"))


async def test_turn_wait_times_out() -> None:
    queue = SqliteWriteQueue(timeout_seconds=0.1)
    async with queue.turn():
        with pytest.raises(TimeoutError, match=r"waited 0.1 s for its turn"):
            async with queue.turn():
                pass

    async with queue.turn():
        pass


def test_queue_serves_several_event_loops() -> None:
    queue = SqliteWriteQueue(timeout_seconds=1)

    async def take_turns() -> int:
        turns = 0
        for _ in range(3):
            async with queue.turn():
                turns += 1
        return turns

    assert asyncio.run(take_turns()) == 3
    assert asyncio.run(take_turns()) == 3


async def test_write_unless_busy_yields_none_while_queued(database: Database) -> None:
    writers = database.sqlite_writers
    assert writers is not None

    async with writers.turn():
        busy = writers.is_busy()
        async with database.write_unless_busy() as skipped:
            pass
    async with database.write_unless_busy() as session:
        assert session is not None
        await session.execute(text("SELECT 1"))

    assert busy is True
    assert skipped is None
    assert writers.is_busy() is False


def test_queue_not_busy_outside_event_loop() -> None:
    assert SqliteWriteQueue(timeout_seconds=1).is_busy() is False
