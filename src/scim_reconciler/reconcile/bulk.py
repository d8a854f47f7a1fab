"""Insert many rows through the driver: COPY on PostgreSQL, executemany on SQLite.

A first run of 100k users writes about 1.3 million rows. A Core insert builds
a parameter dict for every row and, on PostgreSQL, sends INSERT statements
that the server parses and plans again for each batch. Here every value still
goes through its column type's bind processor, as SQLAlchemy would convert it,
but the rows reach the driver as tuples in one call per table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Column, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

Processor = Callable[[Any], Any]

# Rows converted at a time: small enough that COPY starts sending early.
RECORD_CHUNK = 500


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows, all with the same keys, in the session's transaction.

    Columns missing from the rows get their database default, never a
    SQLAlchemy-side default, so a column that has one must be given. A
    constraint violation raises sqlalchemy's IntegrityError, as a Core insert
    does, and leaves the transaction to be rolled back.
    """
    if not rows:
        return
    names = list(rows[0])
    _check_defaults(table, names)
    connection = await session.connection()
    dialect = connection.dialect
    processors = [_processor(table.c[name], dialect) for name in names]
    records = _records(rows, names, processors)
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if dialect.name == "postgresql":
        await _copy(driver, table, names, records)
    else:
        await _execute_many(driver, table, names, list(records), dialect)


async def _copy(
    driver: Any, table: Table, names: list[str], records: Iterator[tuple[Any, ...]]
) -> None:
    import asyncpg  # type: ignore[import-untyped]

    # Outside a transaction, COPY would commit on its own: the session starts
    # one with its first statement, so a batch must have executed one.
    if not driver.is_in_transaction():
        raise RuntimeError(
            f"COPY into {table.name} needs an open transaction: execute a "
            "statement in the session first"
        )
    try:
        # asyncpg sends the records as it takes them, so PostgreSQL stores the
        # first chunk while the next one is converted here.
        await driver.copy_records_to_table(
            table.name, records=records, columns=names, schema_name=table.schema
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from exc


async def _execute_many(
    driver: Any,
    table: Table,
    names: list[str],
    records: list[tuple[Any, ...]],
    dialect: Dialect,
) -> None:
    preparer = dialect.identifier_preparer
    columns = ", ".join(preparer.format_column(table.c[name]) for name in names)
    placeholders = ", ".join("?" for _ in names)
    statement = (
        f"INSERT INTO {preparer.format_table(table)} ({columns}) "
        f"VALUES ({placeholders})"
    )
    try:
        await driver.executemany(statement, records)
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc


def _check_defaults(table: Table, names: list[str]) -> None:
    missing = [
        column.name
        for column in table.columns
        if column.default is not None and column.name not in names
    ]
    if missing:
        raise ValueError(
            f"rows for {table.name} lack {', '.join(missing)}, which have "
            "SQLAlchemy-side defaults that a bulk insert does not apply"
        )


def _processor(column: Column[Any], dialect: Dialect) -> Processor | None:
    if isinstance(column.type, JSON):
        # SQLAlchemy's serializer with the separators' spaces left out: every
        # JSON reader reads it the same, and the audit and run record write
        # hundreds of megabytes of it in a run of 100k users.
        return _compact_json
    processor: Processor | None = column.type.dialect_impl(dialect).bind_processor(
        dialect
    )
    return processor


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _records(
    rows: Sequence[Mapping[str, Any]],
    names: list[str],
    processors: list[Processor | None],
) -> Iterator[tuple[Any, ...]]:
    """Convert the rows to tuples of driver values, a chunk at a time.

    Each chunk is converted column by column. Many columns repeat one object
    in every row (the batch's timestamp, the organization, the source), so a
    value that is the previous row's object reuses its converted form.
    """
    for start in range(0, len(rows), RECORD_CHUNK):
        chunk = rows[start : start + RECORD_CHUNK]
        columns: list[list[Any]] = []
        for name, process in zip(names, processors, strict=True):
            values = [row[name] for row in chunk]
            if process is not None:
                values = _converted(values, process)
            columns.append(values)
        yield from zip(*columns, strict=True)


def _converted(values: list[Any], process: Processor) -> list[Any]:
    converted = []
    previous: object = object()
    result: Any = None
    for value in values:
        if value is not previous:
            previous = value
            result = process(value)
        converted.append(result)
    return converted
