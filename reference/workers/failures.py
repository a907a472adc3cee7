"""Which errors mean "the connection is gone" and how a job's failure is recorded.

Only a lost connection lets the worker resume the job in hand: the job's row is untouched and
still ours. Every other database error (a cancel, a statement or lock timeout, a deadlock, a
serialization failure, a constraint) is the job's failure: it is recorded with its SQLSTATE
and counts as an attempt, so a job that fails that way every time is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from reference.jobqueue import QueueUnavailableError

# Connection exceptions (class 08) and server shutdown: the session is over.
CONNECTION_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__


def connection_lost(conn: psycopg.Connection[Any] | None, error: BaseException) -> bool:
    """Whether `error` means the session is gone (reconnect and resume), not a failed job."""
    if conn is None or conn.closed or conn.broken:
        return True
    for cause in _chain(error):
        if isinstance(cause, (QueueUnavailableError, psycopg.InterfaceError)):
            return True
        if isinstance(cause, psycopg.OperationalError) and cause.sqlstate is None:
            return True  # libpq's own error: the server never answered
        if isinstance(cause, psycopg.Error) and (cause.sqlstate or "").startswith(
            CONNECTION_GONE_SQLSTATES
        ):
            return True
    return False


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of the database error behind `error`, if there is one."""
    for cause in _chain(error):
        if isinstance(cause, psycopg.Error) and cause.sqlstate:
            return cause.sqlstate
    return None


def failure_message(error: BaseException) -> str:
    """The job's last_error: the error's type and text, with the server's SQLSTATE if any."""
    text = str(error).strip()
    sqlstate = sqlstate_of(error)
    if sqlstate is None:
        return f"{type(error).__name__}: {text}"
    return f"{type(error).__name__}: SQLSTATE {sqlstate}: {text}"


def end_failed_transaction(conn: psycopg.Connection[Any]) -> None:
    """Leave no aborted transaction behind, so fail_job can run on the same connection."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
