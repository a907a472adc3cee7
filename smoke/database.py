"""The smoke suite's database access: every statement in a short transaction of its own.

Production reaches Postgres through a transaction pooler (Supabase's on port 6543, PgBouncer):
each transaction may run on another server connection, and session state stays on whichever
server connection ran it, for the next client to inherit. So nothing here touches the session:
no `SET`, no startup `options`, no `default_transaction_read_only`. Each read runs in
`BEGIN READ ONLY` with a transaction-local `statement_timeout`, each canary write in its own
`BEGIN READ WRITE` with the same bound, and psycopg never prepares a statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import psycopg

from smoke.sql import query

CONNECT_TIMEOUT = 5  # seconds for one database connection attempt
APPLICATION_NAME = "dragonfly-smoke"  # PgBouncer passes it on; it shows in pg_stat_activity


def connect_kwargs(db_url: str) -> dict[str, Any]:
    """Keyword arguments for `psycopg.connect(db_url, ...)`: the one place that decides them.

    Prepared statements are off for every URL, pooled or not: behind a transaction pooler a
    statement psycopg prepared on one server connection is missing (or another client's) on the
    next, and the smoke suite runs each statement a handful of times, so preparing never pays.
    (When the project's shared pooled-URL helper lands, it may take over here.)
    """
    return {
        "autocommit": True,  # transactions are explicit: `SmokeDatabase.transaction`
        "prepare_threshold": None,
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": APPLICATION_NAME,
    }


class SmokeDatabase:
    """One connection to the target; `rows`/`column` read, `write` writes, each in its own
    transaction bounded by `statement_timeout` seconds."""

    def __init__(self, conn: psycopg.Connection[Any], statement_timeout: float) -> None:
        self.conn = conn
        self.timeout_ms = f"{max(1, int(statement_timeout * 1000))}ms"

    @classmethod
    def connect(cls, db_url: str, statement_timeout: float) -> SmokeDatabase:
        return cls(psycopg.connect(db_url, **connect_kwargs(db_url)), statement_timeout)

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """`BEGIN READ ONLY` (or `READ WRITE`) with `SET LOCAL statement_timeout`; rolled back
        on error. Nothing outlives it on the server connection."""
        self.conn.read_only = not write  # psycopg's BEGIN READ ONLY / BEGIN READ WRITE
        with self.conn.transaction():
            self.conn.execute(query("set_local_statement_timeout"), {"timeout": self.timeout_ms})
            yield self.conn

    @staticmethod
    def statement(name: str) -> bytes:
        """The named statement, to run inside `transaction()`."""
        return query(name)

    def rows(self, name: str, **params: object) -> list[tuple[Any, ...]]:
        """The rows of the named read-only statement."""
        with self.transaction() as conn:
            return conn.execute(query(name), params).fetchall()

    def column(self, name: str, **params: object) -> list[Any]:
        """The first column of the named read-only statement's rows."""
        return [row[0] for row in self.rows(name, **params)]

    def write(self, name: str, **params: object) -> list[tuple[Any, ...]]:
        """The named writing statement in a short read-write transaction; its returned rows."""
        with self.transaction(write=True) as conn:
            cursor = conn.execute(query(name), params)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SmokeDatabase:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
