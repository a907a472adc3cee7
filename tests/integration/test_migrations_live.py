"""Migrations under live traffic: claims and enqueues keep flowing while a new migration lands.

The test-only migrations in live_migrations/ add a column (ACCESS EXCLUSIVE for a moment) and
an index (CREATE INDEX CONCURRENTLY) on ops.job_queue. A long report query holds a lock on the
table meanwhile: a migration that waits for it without a lock timeout makes every claim queue
behind it, for as long as the report runs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.waiting import wait_until
from reference.db import (
    LockTimeoutError,
    MigrationError,
    MigrationSettings,
    apply_migrations,
    load_migrations,
)
from reference.jobqueue import QueueClient, QueueError

LIVE_MIGRATIONS = Path(__file__).with_name("live_migrations")
LATEST = load_migrations()[-1].version  # the project's newest migration, below the test ones
# What a client gives one claim or enqueue before it calls it failed: a statement held behind
# the migration for longer is cancelled by Postgres and shows in Traffic.errors.
TRAFFIC_STATEMENT_TIMEOUT = "2500ms"
REPORT_SECONDS = 6.0  # how long the long report holds its lock on ops.job_queue
PATIENT = MigrationSettings(lock_timeout=0.5, attempts=60, retry_pause=0.3)


@dataclass
class Traffic:
    """Claims, completions and enqueues from several threads, with their errors and times."""

    url: str
    done: int = 0
    errors: list[str] = field(default_factory=list)
    longest: float = 0.0
    longest_lock_wait: float = 0.0
    pids: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(f"SET statement_timeout = '{TRAFFIC_STATEMENT_TIMEOUT}'")
        with self.lock:
            self.pids.append(conn.info.backend_pid)
        return conn

    def run(self, operation: Callable[[QueueClient, int], None]) -> None:
        with self.connect() as conn:
            queue = QueueClient(conn)
            n = 0
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    operation(queue, n)
                except (psycopg.Error, QueueError) as error:
                    with self.lock:
                        self.errors.append(f"{type(error).__name__}: {error}".strip())
                took = time.monotonic() - started
                with self.lock:
                    self.done += 1
                    self.longest = max(self.longest, took)
                n += 1

    def watch_lock_waits(self) -> None:
        """Sample how long any traffic session has waited for a lock (pg_locks.waitstart)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.05):
                row = conn.execute(
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - waitstart)), 0)"
                    " FROM pg_locks WHERE NOT granted AND pid = ANY(%s)",
                    (list(self.pids),),
                ).fetchone()
                self.longest_lock_wait = max(self.longest_lock_wait, float(row[0]) if row else 0)


def claim_and_complete(queue: QueueClient, n: int) -> None:
    worker = f"live-{threading.get_ident()}"
    for job in queue.claim_pending_job(["load_probe"], worker):
        queue.complete_job(job.id, worker)


def enqueue(queue: QueueClient, n: int) -> None:
    queue.queue_job("load_probe", {"n": n}, idempotency_key=str(uuid.uuid4()))


@contextmanager
def running(traffic: Traffic) -> Iterator[Traffic]:
    operations = [claim_and_complete] * 3 + [enqueue] * 2
    threads = [threading.Thread(target=traffic.run, args=(op,)) for op in operations]
    threads.append(threading.Thread(target=traffic.watch_lock_waits))
    for thread in threads:
        thread.start()
    try:
        wait_until("traffic to get going", lambda: traffic.done > 50, timeout=30)
        yield traffic
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=30)


@contextmanager
def long_report(url: str, seconds: float | None) -> Iterator[psycopg.Connection[Any]]:
    """A reporting transaction that read ops.job_queue and stays open (ACCESS SHARE held)."""
    conn = psycopg.connect(url)
    conn.execute("SELECT count(*) FROM ops.job_queue /* nightly queue report */").fetchone()
    ender = None
    if seconds is not None:
        ender = threading.Timer(seconds, conn.rollback)
        ender.start()
    try:
        yield conn
    finally:
        if ender is not None:
            ender.join()
        conn.close()


def with_live_migrations(*names: str) -> list[Any]:
    extra = [m for m in load_migrations(LIVE_MIGRATIONS) if not names or m.name in names]
    return [*load_migrations(), *extra]


def test_a_new_migration_lands_under_claims_and_enqueues(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT ops.queue_job('load_probe', jsonb_build_object('seed', i))"
            " FROM generate_series(1, 3000) AS i"
        )
    waits: list[str] = []
    with running(Traffic(database_url)) as traffic:
        with long_report(database_url, REPORT_SECONDS):
            started = time.monotonic()
            applied = apply_migrations(
                database_url, with_live_migrations(), PATIENT, on_wait=waits.append
            )
            took = time.monotonic() - started
        done_before = traffic.done
        wait_until("traffic after it", lambda: traffic.done > done_before + 20, timeout=30)
    print(
        f"\n{traffic.done} claims/enqueues, {len(traffic.errors)} failed; longest operation "
        f"{traffic.longest:.2f} s, longest lock wait {traffic.longest_lock_wait:.2f} s; "
        f"migration took {took:.1f} s with {len(waits)} retries"
    )

    assert [m.name for m in applied] == ["job_queue_note", "job_queue_note_index"]
    # A claim planned before the column committed and run after it fails once with 42804
    # unless the queue client retries it (reference/jobqueue/client.py, ROWTYPE_CHANGED).
    # A claim held behind the migration past TRAFFIC_STATEMENT_TIMEOUT is an error here too.
    assert traffic.errors == [], traffic.errors
    assert waits, "the migration never had to wait: the report held no lock?"
    assert "nightly queue report" in waits[0], waits[0]
    with psycopg.connect(database_url) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ops.job_queue_note_idx'::regclass"
        ).fetchone()
    assert valid == (True,)


def test_a_migration_behind_a_long_held_lock_gives_up_naming_the_blocker(
    database_url: str,
) -> None:
    settings = MigrationSettings(lock_timeout=0.2, attempts=3, retry_pause=0.1)
    waits: list[str] = []
    migrations = with_live_migrations("job_queue_note")
    with long_report(database_url, None), pytest.raises(LockTimeoutError) as raised:
        apply_migrations(database_url, migrations, settings, on_wait=waits.append)

    message = str(raised.value)
    print(f"\n{message}")
    assert "migration 9001_job_queue_note could not get its lock within 0.2 s" in message
    assert "attempt 3 of 3" in message
    assert "SELECT count(*) FROM ops.job_queue /* nightly queue report */" in message
    assert "idle in transaction" in message
    assert len(waits) == 2, waits
    assert all("retrying in 0.1 s" in wait for wait in waits), waits
    with psycopg.connect(database_url) as conn:
        newest = conn.execute("SELECT max(version) FROM ops.schema_migrations").fetchone()
        assert newest == (LATEST,)
        assert conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'ops.job_queue'::regclass"
            " AND attname = 'note'"
        ).fetchone() == (0,)
    # Once the report ended, the same migration goes through.
    assert [m.name for m in apply_migrations(database_url, migrations, settings)] == [
        "job_queue_note"
    ]


def test_a_failed_concurrent_index_is_not_recorded_and_names_the_invalid_index(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "9003_job_type_unique.sql").write_text(
        "-- dragonfly: no-transaction\n"
        "CREATE UNIQUE INDEX CONCURRENTLY job_queue_job_type_uniq ON ops.job_queue (job_type);\n"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT ops.queue_job('load_probe', '{}') FROM generate_series(1, 2)")

    with pytest.raises(MigrationError) as raised:
        apply_migrations(database_url, [*load_migrations(), *load_migrations(tmp_path)])

    message = str(raised.value)
    print(f"\n{message}")
    assert "9003_job_type_unique left the invalid index(es) ops.job_queue_job_type_uniq" in message
    assert "could not create unique index" in message
    assert "DROP INDEX CONCURRENTLY ops.job_queue_job_type_uniq" in message
    with psycopg.connect(database_url) as conn:
        newest = conn.execute("SELECT max(version) FROM ops.schema_migrations").fetchone()
        assert newest == (LATEST,)


def test_the_marker_anywhere_but_the_first_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "9004_late_marker.sql").write_text(
        "-- An index.\n-- dragonfly: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n"
    )
    with pytest.raises(MigrationError, match="make the first line exactly"):
        load_migrations(tmp_path)


RACER = """
import sys
from pathlib import Path
from reference.db import apply_migrations, load_migrations
go = Path(sys.argv[2])
Path(sys.argv[4]).write_text("")
while not go.exists():
    pass
migrations = [*load_migrations(), *load_migrations(Path(sys.argv[3]))]
print(len(apply_migrations(sys.argv[1], migrations)))
"""


def test_two_migrators_share_a_concurrent_index_migration_without_deadlock(
    database_url: str, tmp_path: Path
) -> None:
    """A migrator waiting for the lock must not hold a snapshot the index build waits for."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT ops.queue_job('load_probe', '{}') FROM generate_series(1, 20000)")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database_url, str(go), str(LIVE_MIGRATIONS), str(ready)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in (tmp_path / "ready-1", tmp_path / "ready-2")
    ]
    try:
        wait_until("both migrators up", lambda: len(list(tmp_path.glob("ready-*"))) == 2, 60)
        go.write_text("")
        results = [proc.communicate(timeout=90) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    assert [proc.returncode for proc in procs] == [0, 0], results
    assert sum(int(out) for out, _ in results) == 2, results
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT version FROM ops.schema_migrations WHERE version > 9000")
        assert sorted(rows.fetchall()) == [(9001,), (9002,)]
