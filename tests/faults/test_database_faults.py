"""The database goes away under running workers: restart, pause, network cut; audited after.

Restart runs on the embedded source (the container's data lives on tmpfs and would not
survive a container restart); pause needs the container source:
`pytest tests/faults --pg-source=container`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psycopg
import pytest

from harness.fault_audit import audit_enforcement, completed_jobs, seed_strategy_jobs
from harness.faults import crash_and_restart, database_paused
from harness.postgres.server import PostgresServer
from harness.processes import ReferenceStack
from harness.waiting import wait_until

JUDGMENTS = int(os.environ.get("DRAGONFLY_FAULT_JOBS", "40"))
OUTAGE_SECONDS = 3.0
AUDIT_TIMEOUT = 240.0


def run_through(stack: ReferenceStack, database_url: str, fault: Callable[[], None]) -> None:
    """Seed, start a worker, inject `fault` once the queue moves, then audit exactly-once."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed_strategy_jobs(conn, JUDGMENTS)
    worker = stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    with psycopg.connect(database_url, autocommit=True) as conn:
        wait_until("some jobs to complete", lambda: completed_jobs(conn) >= 5)
    fault()
    assert worker.process.poll() is None, "the worker must ride out the outage"
    with psycopg.connect(database_url, autocommit=True) as conn:
        wait_until(
            "every job to complete",
            lambda: completed_jobs(conn) == 2 * JUDGMENTS,
            timeout=AUDIT_TIMEOUT,
            poll=0.2,
        )
        figures = audit_enforcement(conn, JUDGMENTS)
    print(f"{fault.__name__}: {figures}, 1 fault injected")


def _hold(
    outage: Callable[[PostgresServer], AbstractContextManager[None]], server: PostgresServer
) -> Callable[[], None]:
    def fault() -> None:
        with outage(server):
            time.sleep(OUTAGE_SECONDS)

    fault.__name__ = outage.__name__
    return fault


def test_a_database_crash_and_restart_loses_and_duplicates_nothing(
    pg_server: PostgresServer, reference_stack: ReferenceStack, database_url: str
) -> None:
    if pg_server.source != "embedded":
        pytest.skip("restart needs the embedded source (the container's data is on tmpfs)")

    def crash_and_restart_database() -> None:
        crash_and_restart(pg_server, OUTAGE_SECONDS)

    run_through(reference_stack, database_url, crash_and_restart_database)


def test_a_frozen_database_loses_and_duplicates_nothing(
    pg_server: PostgresServer, reference_stack: ReferenceStack, database_url: str
) -> None:
    if pg_server.container_id is None:
        pytest.skip("pausing the database needs the container source (--pg-source=container)")
    run_through(reference_stack, database_url, _hold(database_paused, pg_server))
