"""What a handler gets besides its job, the handler signature, and the errors it may raise."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from reference.config import Settings
from reference.jobqueue import Job, QueueClient
from reference.sqlfile import NamedQueries

LEASE_LOST_SQLSTATE = "DFQ03"  # raised by ops.hold_lease (migration 0013)
STATEMENT_TIMEOUT_MESSAGE = "statement timeout"  # 57014 says which cancel it was

query = NamedQueries("reference.workers", "job.sql")


class PermanentJobError(Exception):
    """No retry can help this job (e.g. what it names is gone): it is dead-lettered at once."""


class LeaseLostError(Exception):
    """Another worker holds this job now: stop, and leave its effects uncommitted."""


class JobTimeoutError(Exception):
    """The job ran past WORKER_JOB_TIMEOUT: the database cancelled its transaction."""


@dataclass
class JobContext:
    """A handler's view of its worker, for one job.

    `conn` is autocommit. A handler writes its effects inside `with context.transaction(job):`,
    which gives every statement only the job's time left (WORKER_JOB_TIMEOUT, enforced by the
    database) and ends with a fenced statement: the transaction commits only while this worker
    still holds the job, else it aborts and LeaseLostError is raised. Follow-up jobs enqueued
    through `queue` inside it commit with it. `lease_lost()` / `check_lease()` read the lease
    keeper's flag: an early exit for a long handler, not the fence.
    """

    conn: psycopg.Connection[Any]
    queue: QueueClient
    worker_id: str
    settings: Settings
    lease: threading.Event = field(default_factory=threading.Event)  # set when the lease is lost
    started: float = field(default_factory=time.monotonic)  # the job's start, monotonic seconds

    @property
    def time_limit(self) -> float:
        """Seconds the job may run (WORKER_JOB_TIMEOUT)."""
        return self.settings.worker_job_timeout

    @property
    def deadline(self) -> float:
        """When the job's time is up, in time.monotonic() seconds."""
        return self.started + self.time_limit

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def lease_lost(self) -> bool:
        """True once the lease keeper saw that this worker no longer holds the job."""
        return self.lease.is_set()

    def check_lease(self) -> None:
        """Raise LeaseLostError once the lease keeper saw the lease lost."""
        if self.lease.is_set():
            raise LeaseLostError("the lease on this job was lost: another worker holds it now")

    def over_limit(self) -> JobTimeoutError:
        return JobTimeoutError(
            f"the job ran over its time limit of {self.time_limit:g} s (WORKER_JOB_TIMEOUT); "
            "the database cancelled its transaction"
        )

    def hold_lease(self, job: Job) -> None:
        """Inside `transaction(job)`: the fence now (transaction() ends with it anyway).

        It row-locks the job until the commit. A handler that goes on to update a row the
        queue's own triggers update after the job row (the ingest batch) takes it first, so
        both lock in the same order (job, then batch) and never deadlock with the reaper.
        """
        self.check_lease()
        if self.time_left() <= 0:
            raise self.over_limit()
        self.conn.execute(query("hold_lease"), {"job_id": job.id, "worker_id": self.worker_id})

    @contextmanager
    def transaction(self, job: Job) -> Iterator[psycopg.Connection[Any]]:
        """The job's effects in one transaction, limited to its time left and fenced."""
        left = self.time_left()
        if left <= 0:
            raise self.over_limit()
        try:
            with self.conn.transaction():
                timeout = f"{max(1, math.ceil(left * 1000))}ms"
                self.conn.execute(query("limit_transaction"), {"timeout": timeout})
                yield self.conn
                self.hold_lease(job)
        except psycopg.errors.QueryCanceled as error:
            if STATEMENT_TIMEOUT_MESSAGE in str(error) and self.time_left() <= 0:
                raise self.over_limit() from error
            raise
        except psycopg.Error as error:
            if error.sqlstate == LEASE_LOST_SQLSTATE:
                raise LeaseLostError(
                    f"the lease on job {job.id} was lost before its transaction committed: "
                    "another worker holds it now; nothing was committed"
                ) from error
            raise


Handler = Callable[[Job, JobContext], None]
