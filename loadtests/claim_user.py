"""ClaimUser: claims load_probe jobs and completes them through the queue's SQL functions.

Each call is one Locust request named after the SQL function (`claim_pending_job`,
`complete_job`, `complete_jobs`) with its real response time; a completion the queue refuses
(fenced: the job is no longer ours) is a failure. Every claimed job is recorded for the audit.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from locust import User, task
from locust.env import Environment

from loadtests.options import LoadSettings
from loadtests.process_state import recorder_for
from loadtests.records import ClaimRecord
from reference.jobqueue import Job, QueueClient, QueueError
from reference.pooling import connect_kwargs

LOAD_JOB_TYPE = "load_probe"
IDLE_WAIT = 0.05  # seconds a user waits after a claim found nothing, instead of spinning
CONNECT_TIMEOUT = 10  # seconds
REQUEST_TYPE = "pg"
_user_numbers = itertools.count(1)
T = TypeVar("T")


class LeaseLostError(Exception):
    """The queue refused a completion: this worker no longer holds the job."""


class ClaimUser(User):
    """One simulated worker: claim (single or batch), complete, repeat."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.settings = LoadSettings.from_options(environment.parsed_options)
        self.worker_id = f"load-{socket.gethostname()}-{os.getpid()}-{next(_user_numbers)}"
        self.conn: psycopg.Connection[Any] | None = None
        self.idle = False

    def wait_time(self) -> float:
        return IDLE_WAIT if self.idle else 0.0

    def queue(self) -> QueueClient:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = psycopg.connect(
                self.settings.require_db_url(),
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=self.worker_id,
                **connect_kwargs(self.settings.require_db_url()),
            )
        return QueueClient(self.conn)

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def timed(self, name: str, call: Callable[[], T], jobs: Callable[[T], int]) -> T | None:
        """Run `call` as one Locust request; None when it raised (reported as a failure)."""
        recorder = recorder_for(self.settings.run_id)
        started = time.perf_counter()
        try:
            result = call()
        except (QueueError, psycopg.Error) as error:
            elapsed = time.perf_counter() - started
            self.report(name, elapsed, 0, error)
            recorder.operation(name, elapsed, 0, ok=False)
            return None
        elapsed = time.perf_counter() - started
        count = jobs(result)
        if name == "claim_pending_job" and count == 0:
            name = "claim_pending_job (empty)"
        self.report(name, elapsed, count, None)
        recorder.operation(name, elapsed, count, ok=True)
        return result

    def report(self, name: str, seconds: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=seconds * 1000.0,
            response_length=length,
            exception=error,
            context={},
        )

    @task
    def claim_and_complete(self) -> None:
        batch = self.settings.claim_batch_size
        claimed = self.timed(
            "claim_pending_job",
            lambda: self.queue().claim_pending_job([LOAD_JOB_TYPE], self.worker_id, batch),
            len,
        )
        self.idle = not claimed
        if not claimed:
            return
        done = self.complete(claimed)
        recorder = recorder_for(self.settings.run_id)
        for job in claimed:
            locked_at = job.locked_at or job.updated_at  # a claimed row always has locked_at
            recorder.claim(
                ClaimRecord(job.id, self.worker_id, job.attempts, locked_at, job.id in done)
            )

    def complete(self, jobs: list[Job]) -> set[Any]:
        """Complete the claimed jobs (one call for a batch); the ids the queue completed."""
        ids = [job.id for job in jobs]
        if self.settings.claim_batch_size > 1:
            completed = self.timed(
                "complete_jobs", lambda: self.queue().complete_jobs(ids, self.worker_id), len
            )
            done = completed or set()
        else:
            ok = self.timed(
                "complete_job", lambda: self.queue().complete_job(ids[0], self.worker_id), int
            )
            done = set(ids) if ok else set()
        lost = [job_id for job_id in ids if job_id not in done]
        if lost:
            self.report(
                "lease lost",
                0.0,
                len(lost),
                LeaseLostError(f"{len(lost)} claimed job(s) no longer held by {self.worker_id}"),
            )
        return done
