"""Issue 17, findings 4 and 5: a claim locks only what it claims, each lease expires on its
own worker's lock timeout, and the test clock moves only a database the harness opted in."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from harness.postgres.databases import TestDatabases
from harness.postgres.server import PostgresServer
from reference.db import apply_migrations
from reference.jobqueue import JobType, QueueClient

Connect = Callable[..., psycopg.Connection[Any]]
INGEST, STRATEGY = JobType.INGEST_CSV, JobType.ENFORCEMENT_STRATEGY
T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
# Another session's claim-like scan: every due pending job it can lock right now.
FREE_SCAN = "SELECT id FROM ops.job_queue WHERE status = 'pending' FOR UPDATE SKIP LOCKED"


def freeze(conn: psycopg.Connection[Any], at: datetime) -> None:
    conn.execute("SELECT set_config('dragonfly.clock_frozen_at', %s, false)", (at.isoformat(),))


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("call", ["claim", "complete_and_claim"])
def test_an_open_claim_leaves_every_unclaimed_job_to_other_sessions(
    db_connect: Connect, batch_size: int, call: str
) -> None:
    claimer, other = db_connect(), db_connect()
    queue = QueueClient(claimer)
    held = queue.queue_job(JobType.LOAD_PROBE)
    queue.claim_pending_job([JobType.LOAD_PROBE], "w")
    jobs = {queue.queue_job(job_type) for job_type in (INGEST, STRATEGY) for _ in range(3)}
    with claimer.transaction(force_rollback=True):
        if call == "claim":
            rows = claimer.execute(
                "SELECT id FROM ops.claim_pending_job(%s, 'w', %s)",
                ([INGEST.value, STRATEGY.value], batch_size),
            ).fetchall()
        else:
            rows = claimer.execute(
                "SELECT id FROM ops.complete_job_and_claim(%s, 'w', %s, %s) "
                "WHERE status = 'processing'",
                (held, [INGEST.value, STRATEGY.value], batch_size),
            ).fetchall()
        claimed = {row[0] for row in rows}
        assert len(claimed) == batch_size
        # While the claim's transaction is open, every job it did not claim is free.
        seen = {row[0] for row in other.execute(FREE_SCAN).fetchall()}
        assert seen == jobs - claimed, f"{len(jobs - claimed - seen)} unclaimed jobs locked"


def test_leases_expire_on_each_claimers_own_lock_timeout(db_connect: Connect) -> None:
    short_conn, long_conn = db_connect(), db_connect()
    short, long = QueueClient(short_conn), QueueClient(long_conn)
    for conn in (short_conn, long_conn):
        freeze(conn, T0)
    quick = short.queue_job(INGEST, run_at=T0)
    slow = long.queue_job(STRATEGY, run_at=T0)
    [claimed_quick] = short.claim_pending_job([INGEST], "short", lock_timeout=timedelta(seconds=2))
    [claimed_slow] = long.claim_pending_job([STRATEGY], "long", lock_timeout=timedelta(seconds=60))
    assert claimed_quick.lease_expires_at == T0 + timedelta(seconds=2)
    assert claimed_slow.lease_expires_at == T0 + timedelta(seconds=60)

    def reaped_at(offset: timedelta, client: QueueClient, timeout: timedelta) -> set[UUID]:
        for conn in (short_conn, long_conn):
            freeze(conn, T0 + offset)
        return {job.id for job in client.reap_stuck_jobs(timeout)}

    # The short-timeout worker's reaper leaves the long lease alone ...
    assert reaped_at(timedelta(seconds=1), short, timedelta(seconds=2)) == set()
    assert reaped_at(timedelta(seconds=3), short, timedelta(seconds=2)) == {quick}
    assert reaped_at(timedelta(seconds=30), short, timedelta(seconds=2)) == set()
    # ... an extension moves the lease by the extender's own timeout ...
    assert long.extend_lock(slow, "long", lock_timeout=timedelta(seconds=60))
    assert reaped_at(timedelta(seconds=61), short, timedelta(seconds=2)) == set()
    assert reaped_at(timedelta(seconds=89), long, timedelta(seconds=60)) == set()
    # ... and any reaper takes a lease back once it expired, whatever its own timeout.
    assert reaped_at(timedelta(seconds=91), short, timedelta(seconds=2)) == {slow}


def test_a_long_timeout_reaper_takes_a_short_lease_back_when_it_expires(
    db_connect: Connect,
) -> None:
    conn = db_connect()
    queue = QueueClient(conn)
    freeze(conn, T0)
    job = queue.queue_job(INGEST, run_at=T0)
    queue.claim_pending_job([INGEST], "short", lock_timeout=timedelta(seconds=2))
    freeze(conn, T0 + timedelta(seconds=3))

    assert [j.id for j in queue.reap_stuck_jobs(timedelta(minutes=30))] == [job]


def test_a_default_claim_keeps_the_databases_thirty_minute_lease(db_connect: Connect) -> None:
    conn = db_connect()
    queue = QueueClient(conn)
    freeze(conn, T0)
    queue.queue_job(INGEST, run_at=T0)
    [job] = queue.claim_pending_job([INGEST], "w")

    assert job.lease_expires_at == T0 + timedelta(minutes=30)


def test_the_health_view_counts_a_lease_stuck_when_it_expired(db_connect: Connect) -> None:
    conn = db_connect()
    queue = QueueClient(conn)
    freeze(conn, T0)
    queue.queue_job(INGEST, run_at=T0)
    queue.claim_pending_job([INGEST], "w", lock_timeout=timedelta(seconds=2))
    stuck = "SELECT stuck FROM ops.v_queue_health WHERE job_type = 'ingest_csv'"

    assert conn.execute(stuck).fetchone() == (0,)
    freeze(conn, T0 + timedelta(seconds=3))
    assert conn.execute(stuck).fetchone() == (1,)


@pytest.fixture
def production_like_url(pg_server: PostgresServer, pg_databases: TestDatabases) -> Iterator[str]:
    """A database migrated from scratch, as production is: not cloned from the test template."""
    name = f"{pg_databases.prefix}_prod_{secrets.token_hex(4)}"
    pg_databases.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        conninfo = pg_server.conninfo_for(name)
        apply_migrations(conninfo)
        yield conninfo
    finally:
        pg_databases.drop(name)


CLOCK_SKEW = "SELECT ops.clock() - now(), ops.statement_clock() - statement_timestamp()"
MOVED = "-c dragonfly.clock_offset=2h -c dragonfly.clock_frozen_at=2001-01-01T00:00:00Z"


def test_a_database_not_opted_in_keeps_real_time_under_pgoptions(production_like_url: str) -> None:
    with psycopg.connect(production_like_url, autocommit=True, options=MOVED) as conn:
        assert conn.execute("SHOW dragonfly.clock_offset").fetchone() == ("2h",)
        assert conn.execute(CLOCK_SKEW).fetchone() == (timedelta(0), timedelta(0))
        job = QueueClient(conn).queue_job(INGEST)
        row = conn.execute("SELECT run_at FROM ops.job_queue WHERE id = %s", (job,)).fetchone()
        assert row is not None
        (run_at,) = row
        assert abs(run_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_the_harness_test_databases_honour_the_test_clock(database_url: str) -> None:
    with psycopg.connect(
        database_url, autocommit=True, options="-c dragonfly.clock_offset=2h"
    ) as conn:
        assert conn.execute(CLOCK_SKEW).fetchone() == (timedelta(hours=2), timedelta(hours=2))


def test_a_test_database_that_opts_out_keeps_real_time(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True, options=MOVED) as conn:
        conn.execute("DELETE FROM ops.test_clock")
        assert conn.execute(CLOCK_SKEW).fetchone() == (timedelta(0), timedelta(0))


@pytest.mark.parametrize(("held", "batch_size"), [(5, 1), (12, 3)])
def test_a_claim_looks_past_every_job_other_sessions_hold(
    db_connect: Connect, held: int, batch_size: int
) -> None:
    holder, claimer = db_connect(), db_connect()
    queue = QueueClient(claimer)
    base = datetime.now(UTC) - timedelta(hours=1)
    jobs = [queue.queue_job(INGEST, run_at=base + timedelta(seconds=n)) for n in range(held + 5)]
    with holder.transaction(force_rollback=True):
        taken = holder.execute(
            "SELECT id FROM ops.claim_pending_job(ARRAY['ingest_csv'], 'holder', %s)", (held,)
        ).fetchall()
        assert [row[0] for row in taken] == jobs[:held]
        # More held than one round's lookahead: the claim must look again past them.
        claimed = queue.claim_pending_job([INGEST], "claimer", batch_size)
        assert [job.id for job in claimed] == jobs[held : held + batch_size]
