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

from harness.faults import FaultTally, crash_and_restart, database_paused, network_cut
from harness.faults.audit import completed_jobs, drain_and_audit, seed_strategy_jobs
from harness.faults.gate import StrategyStriker, applications, terminate
from harness.postgres.server import PostgresServer, PostgresSourceError
from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until

JUDGMENTS = int(os.environ.get("DRAGONFLY_FAULT_JOBS", "40"))
CUT_SECONDS = 3.0  # the network cut's length once in effect: the fault itself
OUTAGE_LIMIT = 30.0  # seconds an outage may take to be felt before the test gives up
AUDIT_TIMEOUT = float(os.environ.get("DRAGONFLY_FAULT_AUDIT_TIMEOUT", "240"))


def run_through(
    stack: ReferenceStack,
    database_url: str,
    fault: Callable[[], None],
    report: Callable[[str], None],
) -> None:
    """Seed, start a worker, bring a gated job's handler to its fence (inside its
    transaction, nothing committed), inject `fault` there, then audit exactly-once."""
    tally = FaultTally(fault.__name__, minimum=1)
    worker = stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    with psycopg.connect(database_url, autocommit=True) as conn:
        seed_strategy_jobs(conn, JUDGMENTS)
        striker = StrategyStriker(database_url, conn)
        stranded = striker.session_pids()
        try:
            job_id, _pid = striker.to_fence(timeout=AUDIT_TIMEOUT)
            in_flight = applications(conn, job_id) == 0
            fault()
            tally.count(in_flight)
        finally:
            striker.close()  # the fault may have taken its sessions
    for pid in stranded:  # a cut leaves them alive server-side, holding the gate's locks
        terminate(database_url, pid)
    assert worker.process.poll() is None, "the worker must ride out the outage"
    judgments = JUDGMENTS + 1  # and the gated one
    with psycopg.connect(database_url, autocommit=True) as conn:
        figures = drain_and_audit(conn, judgments, AUDIT_TIMEOUT)
    tally.require_landed()
    report(tally.line(figures))


def worker_lost_the_database(stack: ReferenceStack) -> list[str]:
    """The worker's log lines saying it lost its connection (the fault reached it)."""
    log = stack.services["enforcement"].stderr() + stack.services["enforcement"].stdout()
    return re.findall(r"^.*(?:lost the database connection|database unavailable).*$", log, re.M)


def assert_worker_lost_the_database(stack: ReferenceStack) -> None:
    """The fault reached the worker: it logged a lost connection (else the test proved nothing)."""
    felt = worker_lost_the_database(stack)
    assert felt, "the worker never lost its connection, so the fault did not bite"
    print(f"the worker felt it ({len(felt)} log lines), first: {felt[0]}")


def database_unreachable(database_url: str) -> bool:
    """A fresh connection fails (or times out): the outage is in effect."""
    try:
        psycopg.connect(database_url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def _hold(
    outage: Callable[[PostgresServer], AbstractContextManager[None]],
    server: PostgresServer,
    felt: Callable[[], object],
) -> Callable[[], None]:
    """The outage held until it is in effect and `felt()` holds, not for a fixed time."""

    def fault() -> None:
        with outage(server):
            wait_until("the outage to be felt", felt, timeout=OUTAGE_LIMIT, poll=0.5)

    fault.__name__ = outage.__name__
    return fault


def test_a_database_crash_and_restart_loses_and_duplicates_nothing(
    pg_server: PostgresServer,
    request: pytest.FixtureRequest,
    report_faults: Callable[[str], None],
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
        crash_and_restart(server, OUTAGE_LIMIT, until=lambda: worker_lost_the_database(stack))

    run_through(stack, stack.database_url, crash_and_restart_database, report_faults)
    assert_worker_lost_the_database(stack)


def test_a_frozen_database_loses_and_duplicates_nothing(
    pg_server: PostgresServer,
    reference_stack: ReferenceStack,
    database_url: str,
    report_faults: Callable[[str], None],
) -> None:
    if pg_server.container_id is None:
        pytest.skip("pausing the database needs the container source (--pg-source=container)")
    frozen = _hold(database_paused, pg_server, lambda: database_unreachable(database_url))
    run_through(reference_stack, database_url, frozen, report_faults)


def test_a_network_cut_loses_and_duplicates_nothing(
    durable_container: PostgresServer,
    durable_stack: ReferenceStack,
    report_faults: Callable[[str], None],
) -> None:
    """Not gated like the others: a cut strands the gate's own sessions with the worker's, and
    the worker then waits on a connection no packet reaches (seen: the run never drained). The
    cut comes once the queue moves and lasts CUT_SECONDS after it is in effect; it landed when
    the worker logged the lost connection."""
    url = durable_stack.database_url
    tally = FaultTally("network_cut", minimum=1)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_strategy_jobs(conn, JUDGMENTS)
    durable_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    with psycopg.connect(url, autocommit=True) as conn:
        wait_until("some jobs to complete", lambda: completed_jobs(conn) >= 5, AUDIT_TIMEOUT)
    with network_cut(durable_container):
        wait_until("the cut to be in effect", lambda: database_unreachable(url), OUTAGE_LIMIT)
        time.sleep(CUT_SECONDS)
    with psycopg.connect(url, autocommit=True) as conn:
        figures = drain_and_audit(conn, JUDGMENTS, AUDIT_TIMEOUT)
    tally.count(bool(worker_lost_the_database(durable_stack)))
    tally.require_landed()
    report_faults(tally.line(figures))


def test_restarting_the_tmpfs_session_container_is_refused_with_the_way_out(
    pg_server: PostgresServer,
) -> None:
    if pg_server.source != "container":
        pytest.skip("the session container of the container source")
    with pytest.raises(PostgresSourceError, match=r"durable=True"):
        crash_and_restart(pg_server, downtime=0.0)
