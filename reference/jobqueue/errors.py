"""The queue client's exceptions; psycopg errors are translated into these in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# SQLSTATEs raised by the queue's SQL functions (reference/db/migrations/0002_*.sql).
UNKNOWN_JOB_TYPE_SQLSTATE = "DFQ01"
INVALID_ARGUMENT_SQLSTATE = "DFQ02"
# Lock timeout, statement timeout, serialization failure, deadlock: the work may succeed later.
BUSY_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01"})
# Connection exceptions (class 08) and server shutdown: the database is not there right now.
UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03")


class QueueError(Exception):
    """The job queue could not do what was asked."""


class UnknownJobTypeError(QueueError, ValueError):
    """The job type is not one of ops.job_types."""


class InvalidArgumentError(QueueError, ValueError):
    """An argument to a queue function is out of its allowed range or shape."""


class QueueUnavailableError(QueueError):
    """The queue's database cannot be reached; retry after a backoff."""


class QueueBusyError(QueueError):
    """The database gave up waiting (lock or statement timeout, deadlock); retry the operation."""


class QueueDatabaseError(QueueError):
    """The database refused a queue operation for a reason the queue does not model."""


def _message(error: psycopg.Error) -> str:
    diag = error.diag
    text = diag.message_primary or str(error).strip()
    return f"{text} ({diag.message_hint})" if diag.message_hint else text


@contextmanager
def translate_errors(operation: str) -> Iterator[None]:
    """Re-raise psycopg errors from `operation` as the queue's own exceptions."""
    try:
        yield
    except psycopg.Error as error:
        if error.sqlstate == UNKNOWN_JOB_TYPE_SQLSTATE:
            raise UnknownJobTypeError(f"{operation}: {_message(error)}") from error
        if error.sqlstate == INVALID_ARGUMENT_SQLSTATE or isinstance(
            error, psycopg.errors.DataError
        ):
            raise InvalidArgumentError(f"{operation}: {_message(error)}") from error
        if error.sqlstate in BUSY_SQLSTATES:
            raise QueueBusyError(f"{operation}: {_message(error)}") from error
        if isinstance(error, psycopg.InterfaceError) or (
            isinstance(error, psycopg.OperationalError)
            and (error.sqlstate is None or error.sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES))
        ):
            raise QueueUnavailableError(
                f"{operation}: the database is unreachable ({type(error).__name__})"
            ) from error
        raise QueueDatabaseError(f"{operation}: {_message(error)}") from error
