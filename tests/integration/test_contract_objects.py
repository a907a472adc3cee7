"""What the queue's small helpers, its clock and its operator views promise, each checked
through the call a user makes (the mutants of harness/mutants/objects.py name these tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from harness.waiting import wait_until
from reference.jobqueue import JobType, QueueClient

Connect = Callable[..., psycopg.Connection[Any]]
T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


def sqlstate_of(conn: psycopg.Connection[Any], statement: str, *params: object) -> str | None:
    try:
        with conn.transaction():
            conn.execute(statement, params)
    except psycopg.Error as error:
        return error.sqlstate
    return None


def test_queueing_an_unknown_job_type_is_refused(db_conn: psycopg.Connection[Any]) -> None:
    assert sqlstate_of(db_conn, "SELECT ops.queue_job('no_such_type')") == "DFQ01"


def test_a_zero_lock_timeout_is_refused(db_conn: psycopg.Connection[Any]) -> None:
    claim = "SELECT * FROM ops.claim_pending_job(ARRAY['ingest_csv'], 'w', 1, interval '0')"
    assert sqlstate_of(db_conn, claim) == "DFQ02"


@pytest.mark.parametrize("worker_id", ["", "   "])
def test_a_blank_worker_id_is_refused(db_conn: psycopg.Connection[Any], worker_id: str) -> None:
    claim = "SELECT * FROM ops.claim_pending_job(ARRAY['ingest_csv'], %s, 1)"
    assert sqlstate_of(db_conn, claim, worker_id) == "DFQ02"


def test_a_job_scheduled_later_is_claimed_once_the_clock_reaches_it(db_connect: Connect) -> None:
    conn = db_connect()
    queue = QueueClient(conn)
    conn.execute("SELECT set_config('dragonfly.clock_frozen_at', %s, false)", (T0.isoformat(),))
    job = queue.queue_job(JobType.INGEST_CSV, run_at=T0 + timedelta(hours=1))
    assert queue.claim_pending_job([JobType.INGEST_CSV], "w") == []
    conn.execute("SELECT set_config('dragonfly.clock_offset', '2 hours', false)")
    assert [j.id for j in queue.claim_pending_job([JobType.INGEST_CSV], "w")] == [job]


def test_the_health_view_counts_only_due_jobs_as_ready(db_connect: Connect) -> None:
    conn = db_connect()
    queue = QueueClient(conn)
    conn.execute("SELECT set_config('dragonfly.clock_frozen_at', %s, false)", (T0.isoformat(),))
    queue.queue_job(JobType.INGEST_CSV, run_at=T0)
    queue.queue_job(JobType.INGEST_CSV, run_at=T0 + timedelta(hours=1))
    health = "SELECT pending, ready FROM ops.v_queue_health WHERE job_type = 'ingest_csv'"
    assert conn.execute(health).fetchone() == (2, 1)


def last_seen(conn: psycopg.Connection[Any], worker_id: str) -> datetime:
    row = conn.execute(
        "SELECT last_seen_at FROM ops.worker_heartbeats WHERE worker_id = %s", (worker_id,)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_each_heartbeat_moves_the_workers_last_seen_time(db_conn: psycopg.Connection[Any]) -> None:
    queue = QueueClient(db_conn)
    queue.register_heartbeat("w-1", "ingest_processor", "host-a", "idle")
    first = last_seen(db_conn, "w-1")

    def beat_moved() -> bool:  # now() is the transaction's time: each beat is its own
        queue.register_heartbeat("w-1", "ingest_processor", "host-a", "busy")
        return last_seen(db_conn, "w-1") > first

    assert wait_until("a later heartbeat moving last_seen_at", beat_moved, timeout=10)


@pytest.mark.parametrize(("silent", "stale"), [(timedelta(seconds=60), False),
                                               (timedelta(minutes=10), True)])  # fmt: skip
def test_a_worker_silent_for_over_90_seconds_is_stale(
    db_conn: psycopg.Connection[Any], silent: timedelta, stale: bool
) -> None:
    QueueClient(db_conn).register_heartbeat("w-1", "ingest_processor", "host-a", "busy")
    db_conn.execute("UPDATE ops.worker_heartbeats SET last_seen_at = now() - %s", (silent,))
    row = db_conn.execute("SELECT is_stale FROM ops.v_worker_status").fetchone()
    assert row == (stale,)


def test_the_lease_fence_refuses_a_worker_that_does_not_hold_the_job(
    db_conn: psycopg.Connection[Any],
) -> None:
    """ops.hold_lease: the holder passes; another worker (its lease taken over) gets DFQ03."""
    queue = QueueClient(db_conn)
    queue.queue_job(JobType.INGEST_CSV)
    [job] = queue.claim_pending_job([JobType.INGEST_CSV], "holder")
    fence = "SELECT ops.hold_lease(%s, %s)"
    assert sqlstate_of(db_conn, fence, job.id, "holder") is None
    assert sqlstate_of(db_conn, fence, job.id, "the-worker-it-was-taken-from") == "DFQ03"
