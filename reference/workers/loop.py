"""The shared worker loop: claim, handle, complete or fail; heartbeat; reap; reconnect.

Reads top-down: tunables, the connection with backoff, the jobs in hand, the loop. One job's
processing is reference.workers.processing; a batch's (WORKER_CONCURRENCY > 1)
reference.workers.batches. The loop settles a success and claims the next job in one
statement (complete_job_and_claim), a batch's successes and the next batch likewise
(complete_jobs_and_claim).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from opentelemetry import metrics
from opentelemetry.instrumentation.utils import suppress_instrumentation

from reference.config import Settings
from reference.jobqueue import Job, QueueClient, QueueError, QueueUnavailableError, WorkerStatus
from reference.telemetry import configure_telemetry
from reference.workers.batches import BatchResult, HandlerSlots
from reference.workers.failures import connection_lost, end_failed_transaction, failure_message
from reference.workers.processing import JobProcessor, JobRun, Outcome
from reference.workers.retention import prune_history
from reference.workers.spec import PROBE_HANDLERS, WorkerSpec

__all__ = ["PROBE_HANDLERS", "Worker", "WorkerSpec", "run_worker"]  # WorkerSpec: its old home

# Heartbeat, lease and retention ages are Settings (WORKER_HEARTBEAT_INTERVAL, ...).
REAP_INTERVAL = 60.0  # seconds between reap_stuck_jobs calls (also once at start)
PRUNE_INTERVAL = 300.0  # seconds between prune_history calls (also once at start)
RECONNECT_BACKOFF_FIRST = 0.5  # seconds before the first reconnect attempt
RECONNECT_BACKOFF_MAX = 15.0  # seconds between reconnect attempts at most
CONNECT_TIMEOUT = 5  # seconds for one connection attempt

logger = logging.getLogger(__name__)
meter = metrics.get_meter(__name__)
jobs_claimed = meter.create_counter("dragonfly.jobs.claimed", "{job}", "Jobs claimed")
jobs_completed = meter.create_counter("dragonfly.jobs.completed", "{job}", "Jobs completed")
claim_duration = meter.create_histogram("dragonfly.job.claim.duration", "s", "claim call time")
queue_wait = meter.create_histogram("dragonfly.job.queue_wait", "s", "claim time minus run_at")


class Worker:
    """One worker process's loop; `stop` is set by SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, spec: WorkerSpec, stop: threading.Event) -> None:
        self.settings = settings
        self.spec = spec
        self.stop = stop
        self.poll_interval = settings.worker_poll_interval or spec.default_poll_interval
        self.handlers = {**spec.handlers, **PROBE_HANDLERS}
        self.worker_id = f"{spec.worker_type}-{socket.gethostname()}-{os.getpid()}"
        self.worker_id += f"-{secrets.token_hex(2)}"
        self.conn: psycopg.Connection[Any] | None = None
        self.next_heartbeat = 0.0
        self.next_reap = 0.0
        self.next_prune = 0.0
        self.last_status: WorkerStatus | None = None
        timeout = settings.worker_lock_timeout
        self.lock_timeout = None if timeout is None else timedelta(seconds=timeout)
        self.concurrency = settings.worker_concurrency
        # Concurrency 1 runs the handler on the loop's own connection, as it always has.
        self.slots: HandlerSlots | None = None
        if self.concurrency > 1:
            self.slots = HandlerSlots(settings, self.worker_id, self.concurrency)

    @property
    def processor(self) -> JobProcessor:
        """How this worker runs one job (built on use: tests rename a worker's worker_id)."""
        return JobProcessor(
            self.settings,
            self.spec.worker_type,
            self.worker_id,
            self.handlers,
            lambda side: self.beat(side, WorkerStatus.BUSY),
            self.lock_timeout,
        )

    # -- the connection -----------------------------------------------------------------
    def connect(self) -> QueueClient | None:
        """A queue client on a live connection, reconnecting with backoff; None once stopping."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return QueueClient(self.conn)
        delay = RECONNECT_BACKOFF_FIRST
        while not self.stop.is_set():
            try:
                self.conn = psycopg.connect(
                    self.settings.database_url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    **self.settings.database_connect_kwargs,
                    application_name=self.worker_id,
                )
                logger.info("connected to the database")
                self.next_heartbeat = 0.0
                return QueueClient(self.conn)
            except psycopg.Error as error:
                # The error text can quote the host but never the password; keep it short.
                reason = str(error).strip().splitlines()[0] if str(error).strip() else "error"
                logger.warning("database unavailable (%s); retrying in %.1fs", reason, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, RECONNECT_BACKOFF_MAX)
        return None

    def drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    # -- housekeeping ----------------------------------------------------------------------
    def housekeeping(self, queue: QueueClient, status: WorkerStatus) -> None:
        now = time.monotonic()
        if now >= self.next_heartbeat or status is not self.last_status:
            self.beat(queue, status)
            self.next_heartbeat = now + self.settings.worker_heartbeat_interval
        if now >= self.next_reap:
            for job in queue.reap_stuck_jobs(self.lock_timeout):
                logger.warning(
                    "reap_stuck_jobs: job %s (%s) -> %s", job.id, job.job_type, job.status
                )
            self.next_reap = now + REAP_INTERVAL
        if now >= self.next_prune:
            prune_history(queue.conn, self.settings)
            self.next_prune = now + PRUNE_INTERVAL

    def beat(self, queue: QueueClient, status: WorkerStatus) -> None:
        """Record this worker alive; called by the loop between jobs, by the lease keeper in one."""
        with suppress_instrumentation():  # a heartbeat every 15 s is not worth a trace
            queue.register_heartbeat(
                self.worker_id, self.spec.worker_type, socket.gethostname(), status
            )
        self.last_status = status

    # -- jobs in hand --------------------------------------------------------------------------
    def process(self, queue: QueueClient, jobs: list[Job]) -> BatchResult:
        """Run the jobs' handlers: one at a time on the loop's connection, or (concurrency > 1)
        at once on the handler slots. A lost loop connection is raised (the loop resumes)."""
        if self.slots is None:
            return BatchResult(runs=[self.processor.process(queue, job) for job in jobs])
        return self.slots.run(self.processor, jobs)

    def handle(self, queue: QueueClient, job: Job) -> None:
        """Process one job on `queue`'s connection and settle it, claiming nothing."""
        self.settle(queue, BatchResult(runs=[self.processor.process(queue, job)]), claim=False)

    def settle(self, queue: QueueClient, batch: BatchResult, *, claim: bool = True) -> list[Job]:
        """Complete the jobs whose handlers succeeded (each fenced by the lease it holds) and
        return the jobs to process next: the next claimed job or batch (in the same statement
        as the completion), else the jobs to resume."""
        succeeded = [run for run in batch.runs if run.outcome is Outcome.SUCCEEDED]
        if not succeeded:
            return batch.resume
        claim = claim and not batch.resume and not self.stop.is_set()
        if claim and self.slots is not None:
            return self.settle_batch_and_claim(queue, succeeded)
        if claim and len(succeeded) == 1:
            run = succeeded[0]
            completed, claimed = queue.complete_job_and_claim(
                run.job.id,
                self.worker_id,
                list(self.handlers),
                lock_timeout=self.lock_timeout,
                trace_parent=run.trace_context,
            )
            self.report_settled(run.job, completed, "complete_job_and_claim")
            if claimed:
                self.record_claim(claimed, "complete_job_and_claim")
            return claimed
        # A stopping worker (which claims nothing more), jobs to resume first, or several resumed
        # one at a time: complete_jobs, one statement.
        done = queue.complete_jobs(
            [run.job.id for run in succeeded],
            self.worker_id,
            trace_parents={run.job.id: run.trace_context for run in succeeded},
        )
        for run in succeeded:
            self.report_settled(run.job, run.job.id in done, "complete_jobs")
        return batch.resume

    def settle_batch_and_claim(self, queue: QueueClient, succeeded: list[JobRun]) -> list[Job]:
        """A batch's successes completed and the next batch claimed: one statement, one commit."""
        done, claimed = queue.complete_jobs_and_claim(
            [run.job.id for run in succeeded],
            self.worker_id,
            list(self.handlers),
            self.concurrency,
            lock_timeout=self.lock_timeout,
            trace_parents={run.job.id: run.trace_context for run in succeeded},
        )
        for run in succeeded:
            self.report_settled(run.job, run.job.id in done, "complete_jobs_and_claim")
        if claimed:
            self.record_claim(claimed, "complete_jobs_and_claim")
        return claimed

    def report_settled(self, job: Job, completed: bool, operation: str) -> None:
        if completed:
            jobs_completed.add(1, {"job_type": job.job_type})
            logger.info("%s: %s (%s) completed", operation, job.id, job.job_type)
        else:
            logger.warning("%s: lease on %s was lost; not completed", operation, job.id)

    def claim(self, queue: QueueClient) -> list[Job]:
        started = time.monotonic()
        jobs = queue.claim_pending_job(
            list(self.handlers), self.worker_id, self.concurrency, lock_timeout=self.lock_timeout
        )
        claim_duration.record(time.monotonic() - started)
        if jobs:
            self.record_claim(jobs, "claim_pending_job")
        return jobs

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> int:
        recovering = False
        jobs: list[Job] = []  # claimed and not processed yet: finished even once stopping
        while jobs or not self.stop.is_set():
            queue = self.connect()
            if queue is None:
                break
            try:
                if recovering:
                    # The connection died mid-job, perhaps mid-claim: a claim can commit on
                    # the server while its answer is lost. Finish whatever is still ours.
                    jobs = queue.held_jobs(self.worker_id)
                    for job in jobs:
                        logger.info("resuming job %s after reconnect", job.id)
                    recovering = False
                if not jobs:
                    self.housekeeping(queue, WorkerStatus.IDLE)
                    jobs = self.claim(queue)
                    if not jobs:
                        logger.debug(
                            "claim_pending_job: nothing due; next poll in %ss", self.poll_interval
                        )
                        self.stop.wait(self.poll_interval)
                        continue
                self.housekeeping(queue, WorkerStatus.BUSY)
                batch = self.process(queue, jobs)
                jobs = self.settle(queue, batch)
            except (QueueUnavailableError, psycopg.OperationalError) as error:
                if not connection_lost(self.conn, error):
                    # A statement failed (a timeout, a cancel) but the session lives: a
                    # handler's errors fail its job, so what is held now (a settlement that
                    # did not commit) is left to the reaper; poll again.
                    logger.error("database error: %s", failure_message(error))
                    end_failed_transaction(queue.conn)
                    jobs = []
                    self.stop.wait(self.poll_interval)
                    continue
                logger.warning("lost the database connection: %s", type(error).__name__)
                self.drop_connection()
                recovering = True
            except QueueError as error:
                logger.error("queue error: %s", error)
                jobs = []
                self.stop.wait(self.poll_interval)
        self.goodbye()
        return 0

    def record_claim(self, jobs: list[Job], operation: str) -> None:
        for job in jobs:
            jobs_claimed.add(1, {"job_type": job.job_type})
            wait = (datetime.now(UTC) - job.run_at).total_seconds()
            queue_wait.record(max(wait, 0.0), {"job_type": job.job_type})
            logger.info("%s: %s (%s, attempt %d)", operation, job.id, job.job_type, job.attempts)

    def goodbye(self) -> None:
        try:
            if self.conn is not None and not self.conn.broken:
                QueueClient(self.conn).register_heartbeat(
                    self.worker_id, self.spec.worker_type, socket.gethostname(), "stopped"
                )
        except (QueueError, psycopg.Error):
            pass  # the database is gone; v_worker_status will show the worker as stale
        self.drop_connection()
        if self.slots is not None:
            self.slots.close()
        logger.info("worker %s stopped", self.worker_id)


def run_worker(settings: Settings, spec: WorkerSpec) -> int:
    """Print the start lines, install signal handlers, run the loop until SIGTERM; exit code."""
    telemetry = configure_telemetry(f"dragonfly-{spec.worker_type}", settings)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        logger.info("%s received: finishing the job in hand, then exiting", name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker = Worker(settings, spec, stop)
    print(f"🚀 Starting {spec.title} Worker (env={settings.environment.value})")
    print(f"Poll interval: {worker.poll_interval}s")
    print(f"Job types: {', '.join(spec.job_types)}", flush=True)
    if worker.concurrency > 1:  # the seed's three lines stay exactly as they were by default
        print(f"Concurrency: {worker.concurrency} jobs at once", flush=True)
    try:
        return worker.run()
    finally:
        telemetry.shutdown()
        sys.stdout.flush()
