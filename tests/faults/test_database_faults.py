"""The database goes away under running workers: restart, pause, network cut; audited after.

Restart runs on the embedded source, and on the container source in a durable container of
the test's own (the session container's data lives on tmpfs and would not survive a restart);
pause and the network cut need the container source (the cut, too, on a durable container):
`pytest tests/faults --pg-source=container`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psycopg
import pytest

from harness.fault_audit import audit_enforcement, completed_jobs, seed_strategy_jobs
from harness.faults import crash_and_restart, database_paused, network_cut
from harness.postgres.server import PostgresServer, PostgresSourceError
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


def assert_worker_lost_the_database(stack: ReferenceStack) -> None:
    """The fault reached the worker: it logged a lost connection (else the test proved nothing)."""
    log = stack.services["enforcement"].stderr() + stack.services["enforcement"].stdout()
    felt = re.findall(r"^.*(?:lost the database connection|database unavailable).*$", log, re.M)
    assert felt, f"the worker never lost its connection, so the fault did not bite:\n{log[-2000:]}"
    print(f"the worker felt it ({len(felt)} log lines), first: {felt[0]}")


def _hold(
    outage: Callable[[PostgresServer], AbstractContextManager[None]], server: PostgresServer
) -> Callable[[], None]:
    def fault() -> None:
        with outage(server):
            time.sleep(OUTAGE_SECONDS)

    fault.__name__ = outage.__name__
    return fault


def test_a_database_crash_and_restart_loses_and_duplicates_nothing(
    pg_server: PostgresServer, request: pytest.FixtureRequest
) -> None:
    if pg_server.source == "embedded":
        server = pg_server
        stack: ReferenceStack = request.getfixturevalue("reference_stack")
    elif pg_server.source == "container":
        server = request.getfixturevalue("durable_container")
        stack = request.getfixturevalue("durable_stack")
    else:
        pytest.skip("the harness cannot restart an external server")

    def crash_and_restart_database() -> None:
        crash_and_restart(server, OUTAGE_SECONDS)

    run_through(stack, stack.database_url, crash_and_restart_database)
    assert_worker_lost_the_database(stack)


def test_a_frozen_database_loses_and_duplicates_nothing(
    pg_server: PostgresServer, reference_stack: ReferenceStack, database_url: str
) -> None:
    if pg_server.container_id is None:
        pytest.skip("pausing the database needs the container source (--pg-source=container)")
    run_through(reference_stack, database_url, _hold(database_paused, pg_server))


def test_a_network_cut_loses_and_duplicates_nothing(
    durable_container: PostgresServer, durable_stack: ReferenceStack
) -> None:
    run_through(durable_stack, durable_stack.database_url, _hold(network_cut, durable_container))
    assert_worker_lost_the_database(durable_stack)


def test_restarting_the_tmpfs_session_container_is_refused_with_the_way_out(
    pg_server: PostgresServer,
) -> None:
    if pg_server.source != "container":
        pytest.skip("the session container of the container source")
    with pytest.raises(PostgresSourceError, match=r"durable=True"):
        crash_and_restart(pg_server, downtime=0.0)
