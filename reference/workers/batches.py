"""WORKER_CONCURRENCY > 1: a claimed batch's handlers at once, each on a connection of its own.

Each job keeps everything the one-at-a-time loop gives it: its own `process` span, its own
lease keeper (so its own lease fence, ops.hold_lease) and its own failure (fail_job for that
job only). A job whose handler lost its connection is handed back to be resumed, still ours.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from reference.config import Settings
from reference.jobqueue import Job, QueueClient, QueueUnavailableError
from reference.workers.failures import connection_lost, failure_message
from reference.workers.processing import JobProcessor, JobRun

CONNECT_TIMEOUT = 5  # seconds for one handler connection attempt

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """The batch's processed jobs, and the jobs to resume (their handler lost its connection)."""

    runs: list[JobRun] = field(default_factory=list)
    resume: list[Job] = field(default_factory=list)


class HandlerSlots:
    """`size` handler connections (autocommit, as the loop's own) and the threads to use them."""

    def __init__(self, settings: Settings, worker_id: str, size: int) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.conns: list[psycopg.Connection[Any] | None] = [None] * size
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="job")

    def queue(self, slot: int) -> QueueClient:
        """The slot's connection, (re)opened if needed; QueueUnavailableError if it cannot be:
        the loop then reconnects as after any lost connection and resumes the jobs it holds."""
        conn = self.conns[slot]
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(
                    self.settings.database_url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    **self.settings.database_connect_kwargs,
                    application_name=f"{self.worker_id}-{slot}",
                )
            except psycopg.OperationalError as error:
                raise QueueUnavailableError(
                    f"a handler connection could not be opened: {failure_message(error)}"
                ) from error
            self.conns[slot] = conn
        return QueueClient(conn)

    def run(self, processor: JobProcessor, jobs: Sequence[Job]) -> BatchResult:
        """Process the jobs at once (one per slot; more jobs than slots, e.g. held ones found
        after a reconnect, in turns), each failing or dropping alone."""
        result = BatchResult()
        size = len(self.conns)
        for start in range(0, len(jobs), size):
            self.run_at_once(processor, jobs[start : start + size], result)
        return result

    def run_at_once(self, processor: JobProcessor, jobs: Sequence[Job], into: BatchResult) -> None:
        queues = [self.queue(slot) for slot in range(len(jobs))]
        futures = [
            self.pool.submit(processor.process, queue, job)
            for queue, job in zip(queues, jobs, strict=True)
        ]
        for queue, job, future in zip(queues, jobs, futures, strict=True):
            error = future.exception()
            if error is None:
                into.runs.append(future.result())
            elif connection_lost(queue.conn, error):
                logger.warning("job %s lost its connection (%s); resuming it", job.id, error)
                queue.conn.close()
                into.resume.append(job)
            else:  # its failure could not be recorded: the job stays held until it is reaped
                logger.error("job %s: %s", job.id, failure_message(error))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for conn in self.conns:
            if conn is not None:
                conn.close()
        self.conns = [None] * len(self.conns)
