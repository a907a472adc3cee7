"""Faults as one-line calls, for tests that prove the queue survives them.

    kill_worker(worker)                          # SIGKILL: no cleanup, its leases just age
    crash_and_restart(server, downtime=2.0)      # power cut, then start again (see below)
    expire_leases(database_url)                  # the reaper with a tiny timeout, as an operator
    with database_paused(pg_server): ...         # container source: docker pause / unpause
    with network_cut(server): ...                # container source: off every docker network

crash_and_restart needs a server the harness can restart with its data: the embedded source's,
or a durable container (`start_container(image, durable=True)`: data on the container's disk,
a fixed host port), since the session container keeps its data on tmpfs.

Each returns what it did, so a test can report the faults it injected. A `FaultTally` counts
them, and how many landed on a job in flight (harness/faults/gate.py brings a job to an observed
moment to strike at); `tally.require_landed()` fails the test when too few did, and
`tally.line(figures)` is the test's one-line report:
`faults: <test> injected=N landed=M lost=0 reexecuted=K duplicated=0`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from harness.faults.audit import FaultFigures
from harness.postgres.container import docker_client
from harness.postgres.server import PostgresServer, PostgresSourceError
from harness.sql import query
from harness.stack.processes import ServiceProcess
from harness.telemetry.tracing import harness_span
from harness.waiting import wait_until
from reference.jobqueue import QueueClient
from reference.pooling import connect_kwargs

KILL_WAIT = 10.0  # seconds for the kernel to reap a SIGKILLed process


@dataclass
class FaultTally:
    """Faults a test injected, and how many landed on a job in flight."""

    test: str
    minimum: int  # landed faults the test needs, or it proved nothing
    injected: int = 0
    landed: int = 0

    def count(self, landed: bool) -> None:
        self.injected += 1
        self.landed += bool(landed)

    def require_landed(self) -> None:
        if self.landed < self.minimum:
            raise AssertionError(
                f"{self.test}: landed {self.landed} < minimum {self.minimum} "
                f"({self.injected} faults injected): the faults missed the jobs in flight"
            )

    def line(self, figures: FaultFigures) -> str:
        return (
            f"faults: {self.test} injected={self.injected} landed={self.landed} "
            f"lost={figures.lost} reexecuted={figures.reexecuted} "
            f"duplicated={figures.duplicated}"
        )


@harness_span("kill_worker")
def kill_worker(worker: ServiceProcess) -> int:
    """SIGKILL the worker mid-whatever and wait for it; returns its exit code (-9)."""
    worker.signal(signal.SIGKILL)
    return worker.process.wait(KILL_WAIT)


@harness_span("crash_and_restart")
def crash_and_restart(
    server: PostgresServer, downtime: float = 2.0, until: Callable[[], object] | None = None
) -> None:
    """Immediate stop (no checkpoint, sessions cut), then start: after `until()` holds (waited
    for, `downtime` seconds at most, e.g. until the workers felt it), else `downtime` down.

    Embedded: `pg_ctl stop -m immediate`; durable container: `docker kill`, then `docker start`
    on the same host port, waiting until it accepts connections.
    """
    server.crash()
    if until is None:
        time.sleep(downtime)
    else:
        wait_until("the outage to be felt", until, timeout=max(downtime, 1.0))
    server.restart()


@harness_span("expire_leases")
def expire_leases(
    database_url: str, older_than: timedelta = timedelta(seconds=1), *, retry_now: bool = True
) -> int:
    """Reap every lease older than `older_than`, as an operator would after a crash: each one
    is made to expire now, then reaped.

    With retry_now the reaped jobs are due at once instead of after their backoff.
    """
    with psycopg.connect(database_url, autocommit=True, **connect_kwargs(database_url)) as conn:
        with conn.transaction():  # expired and reaped at once: no extend_lock in between
            conn.execute(query("expire_leases"), {"older_than": older_than})
            reaped = [job.id for job in QueueClient(conn).reap_stuck_jobs(older_than)]
        if retry_now and reaped:
            conn.execute(
                "UPDATE ops.job_queue SET run_at = now() WHERE id = ANY(%s) AND status = 'pending'",
                (reaped,),
            )
    return len(reaped)


@contextmanager
def _container(server: PostgresServer) -> Iterator[Any]:
    if server.container_id is None:
        raise PostgresSourceError(
            f"{server.source}: pausing or cutting the network needs the container source "
            "(--pg-source=container)"
        )
    client = docker_client()
    try:
        yield client.containers.get(server.container_id)
    finally:
        client.close()


@contextmanager
def database_paused(server: PostgresServer) -> Iterator[None]:
    """The Postgres container frozen (docker pause) for the block: sessions hang, then resume."""
    with _container(server) as container, harness_span("database_paused"):
        container.pause()
        try:
            yield
        finally:
            container.unpause()


@contextmanager
def network_cut(server: PostgresServer) -> Iterator[None]:
    """The container off every Docker network for the block (connections fail), then back on.

    Restores reliably on a durable container, whose host port is bound, not just published.
    """
    with _container(server) as container, harness_span("network_cut"):
        names = list(container.attrs["NetworkSettings"]["Networks"])
        networks = [container.client.networks.get(name) for name in names]
        for network in networks:
            network.disconnect(container)
        try:
            yield
        finally:
            for network in networks:
                network.connect(container)
