"""Apply the numbered SQL migrations once, in order, recording each in ops.schema_migrations.

Safe under live traffic: each migration runs in its own transaction with `lock_timeout` and
`statement_timeout` set for that transaction only, so a migration waiting behind a long query
gives up after a few seconds (and is retried) instead of queueing every claim behind it. A file
whose first line is exactly `-- dragonfly: no-transaction` runs outside a transaction (for
`CREATE INDEX CONCURRENTLY`, one statement per file) and is recorded only once it succeeded and
left no invalid index behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors

from reference.db.history import (
    Migration,
    MigrationError,
    check_history,
    load_migrations,
    ordered_migrations,
)
from reference.db.lockwatch import BlockerSample, watch_blockers
from reference.db.sql import query

# One fixed key for pg_try_advisory_xact_lock: every migrating process queues behind it, so two
# processes starting at once apply each file exactly once.
MIGRATION_LOCK_KEY = 7_204_881_310_442_170_001
LOCK_POLL_INTERVAL = 0.05  # seconds between two tries of the migration lock
BOOKKEEPING_SQL = query("create_bookkeeping")


class LockTimeoutError(MigrationError):
    """A migration could not get its lock within lock_timeout, on every attempt."""


@dataclass(frozen=True)
class MigrationSettings:
    """How patient a migration is with the traffic around it."""

    lock_timeout: float = 3.0  # seconds one attempt waits for a lock before it gives up
    statement_timeout: float = 300.0  # seconds one statement of a transactional migration runs
    attempts: int = 5  # tries of one migration that timed out on a lock
    retry_pause: float = 2.0  # seconds between two tries (traffic drains its queue meanwhile)

    def __post_init__(self) -> None:
        # 0 would mean "no timeout" to Postgres: exactly what the setting is there to prevent.
        if not (self.lock_timeout > 0 and self.statement_timeout > 0):
            raise ValueError(
                "the lock timeout and the statement timeout must be positive (seconds), "
                f"not {self.lock_timeout:g} and {self.statement_timeout:g}"
            )
        if self.attempts < 1 or self.retry_pause < 0:
            raise ValueError(
                f"attempts must be at least 1 (got {self.attempts}) and the retry pause at "
                f"least 0 s (got {self.retry_pause:g})"
            )


Progress = Callable[[str], None]


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    # No prepared statements: the migrator may run through a transaction pooler.
    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)


@contextmanager
def _locked_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A transaction holding the migration lock.

    Polled with short transactions rather than waited for: a waiting statement holds a
    snapshot, and CREATE INDEX CONCURRENTLY waits for every older snapshot, so a migrator
    blocked on the lock would deadlock with one building an index.
    """
    while True:
        with conn.transaction():
            row = conn.execute(query("try_migration_lock"), {"key": MIGRATION_LOCK_KEY}).fetchone()
            if row is not None and row[0]:
                yield
                return
        time.sleep(LOCK_POLL_INTERVAL)


def _applied(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str]]:
    rows = conn.execute(query("applied_migrations")).fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def pending_migrations(
    conninfo: str, migrations: Sequence[Migration] | None = None
) -> list[Migration]:
    """What apply_migrations would apply, read in a read-only transaction (changes nothing)."""
    ordered = load_migrations() if migrations is None else ordered_migrations(migrations)
    with _connect(conninfo) as conn, conn.transaction():
        conn.execute(query("read_only_transaction"))
        row = conn.execute(query("bookkeeping_exists")).fetchone()
        applied = _applied(conn) if row is not None and row[0] else {}
    check_history(ordered, applied)
    return [migration for migration in ordered if migration.version not in applied]


def apply_migrations(
    conninfo: str,
    migrations: Sequence[Migration] | None = None,
    settings: MigrationSettings | None = None,
    *,
    on_applied: Callable[[Migration, float], None] | None = None,
    on_wait: Progress | None = None,
) -> list[Migration]:
    """Bring the database at conninfo up to date; returns the migrations applied now.

    `on_applied(migration, seconds)` hears of each migration once it is committed; `on_wait`
    hears why a migration is retried.
    """
    ordered = load_migrations() if migrations is None else ordered_migrations(migrations)
    settings = settings or MigrationSettings()
    applied_now = []
    with _connect(conninfo) as conn:
        with _locked_transaction(conn):
            conn.execute(BOOKKEEPING_SQL)
            applied = _applied(conn)
            check_history(ordered, applied)
        for migration in [m for m in ordered if m.version not in applied]:
            started = time.monotonic()
            if migration.transactional:
                done = _apply_in_transaction(
                    conn, conninfo, migration, ordered, settings=settings, on_wait=on_wait
                )
            else:
                done = _apply_outside_transaction(conn, conninfo, migration, ordered)
            if done:
                applied_now.append(migration)
                if on_applied is not None:
                    on_applied(migration, time.monotonic() - started)
    return applied_now


def _still_pending(
    conn: psycopg.Connection[Any], migration: Migration, migrations: list[Migration]
) -> bool:
    """Under the lock: the history still checks out and nobody applied `migration` meanwhile."""
    applied = _applied(conn)
    check_history(migrations, applied)
    return migration.version not in applied


def _apply_in_transaction(
    conn: psycopg.Connection[Any],
    conninfo: str,
    migration: Migration,
    migrations: list[Migration],
    *,
    settings: MigrationSettings,
    on_wait: Progress | None,
) -> bool:
    for attempt in range(1, settings.attempts + 1):
        seen = BlockerSample()
        try:
            with _locked_transaction(conn):
                if not _still_pending(conn, migration, migrations):
                    return False
                timeouts = {
                    "lock_timeout": f"{round(settings.lock_timeout * 1000)}ms",
                    "statement_timeout": f"{round(settings.statement_timeout * 1000)}ms",
                }
                conn.execute(query("set_timeouts"), timeouts)
                pid = _backend_pid(conn)
                with watch_blockers(
                    conninfo, pid, first_sample_after=min(0.1, settings.lock_timeout / 4)
                ) as seen:
                    conn.execute(migration.sql.encode())
                _record(conn, migration)
        except (errors.LockNotAvailable, errors.DeadlockDetected) as error:
            waited = (
                f"migration {migration.label} could not get its lock within "
                f"{settings.lock_timeout:g} s (attempt {attempt} of {settings.attempts}); "
                f"{seen.describe()}"
            )
            if attempt == settings.attempts:
                raise LockTimeoutError(
                    f"{waited}. Nothing of it was applied. End or wait out that session, then "
                    "run the migrations again (or raise the lock timeout, which is as long as "
                    "traffic may queue behind the migration)"
                ) from error
            if on_wait is not None:
                on_wait(f"{waited}; retrying in {settings.retry_pause:g} s")
            time.sleep(settings.retry_pause)
        except errors.QueryCanceled as error:
            raise MigrationError(
                f"migration {migration.label} ran longer than its statement timeout "
                f"({settings.statement_timeout:g} s) and was rolled back; make it cheaper or "
                "raise the statement timeout"
            ) from error
        except psycopg.Error as error:
            raise MigrationError(f"migration {migration.label} failed: {error}") from error
        else:
            return True
    raise AssertionError("unreachable: the last attempt returns or raises")


def _apply_outside_transaction(
    conn: psycopg.Connection[Any], conninfo: str, migration: Migration, migrations: list[Migration]
) -> bool:
    """Run a no-transaction file on `conn` while a guard transaction holds the lock.

    No lock_timeout here: CREATE INDEX CONCURRENTLY blocks no reads or writes, but waits for
    the transactions older than it; a timeout would stop it midway and leave an invalid index.
    """
    with _connect(conninfo) as guard, _locked_transaction(guard):
        if not _still_pending(guard, migration, migrations):
            return False
        failure: psycopg.Error | None = None
        try:
            conn.execute(migration.sql.encode())
        except psycopg.Error as error:
            failure = error
        invalid = [name for (name,) in guard.execute(query("invalid_indexes")).fetchall()]
        if invalid:
            drops = "; ".join(f"DROP INDEX CONCURRENTLY {name}" for name in invalid)
            raise MigrationError(
                f"migration {migration.label} left the invalid index(es) {', '.join(invalid)}"
                f"{f' ({failure})' if failure else ''}; it is not recorded as applied. Fix the "
                f"cause, run `{drops}`, then run the migrations again"
            ) from failure
        if failure is not None:
            raise MigrationError(f"migration {migration.label} failed: {failure}") from failure
        _record(guard, migration)
    return True


def _backend_pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(query("backend_pid")).fetchone()
    assert row is not None  # SELECT pg_backend_pid() always returns a row
    return int(row[0])


def _record(conn: psycopg.Connection[Any], migration: Migration) -> None:
    conn.execute(
        query("record_migration"),
        {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
    )
