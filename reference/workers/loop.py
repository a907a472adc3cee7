"""The shared worker loop: claim, handle, complete or fail; heartbeat; reap; reconnect.

Reads top-down: tunables, the connection with backoff, one job's processing, the loop.
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from reference.config import Settings
from reference.jobqueue import (
    FailOutcome,
    Job,
    JobType,
    QueueClient,
    QueueError,
    QueueUnavailableError,
    WorkerStatus,
)
from reference.jobqueue.messaging import base_attributes, process_duration
from reference.telemetry import configure_telemetry
from reference.workers.context import Handler, JobContext, LeaseLostError, PermanentJobError
from reference.workers.failures import connection_lost, end_failed_transaction, failure_message
from reference.workers.lease import LeaseKeeper
from reference.workers.retention import prune_history

# Heartbeat, lease and retention ages are Settings (WORKER_HEARTBEAT_INTERVAL, ...).
REAP_INTERVAL = 60.0  # seconds between reap_stuck_jobs calls (also once at start)
PRUNE_INTERVAL = 300.0  # seconds between prune_history calls (also once at start)
RECONNECT_BACKOFF_FIRST = 0.5  # seconds before the first reconnect attempt
RECONNECT_BACKOFF_MAX = 15.0  # seconds between reconnect attempts at most
CONNECT_TIMEOUT = 5  # seconds for one connection attempt
QUEUE_NAME = "ops.job_queue"

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
meter = metrics.get_meter(__name__)
jobs_claimed = meter.create_counter("dragonfly.jobs.claimed", "{job}", "Jobs claimed")
jobs_completed = meter.create_counter("dragonfly.jobs.completed", "{job}", "Jobs completed")
jobs_failed = meter.create_counter("dragonfly.jobs.failed", "{job}", "Job failures (retried)")
jobs_dead_lettered = meter.create_counter(
    "dragonfly.jobs.dead_lettered", "{job}", "Jobs dead-lettered"
)
jobs_lease_lost = meter.create_counter(
    "dragonfly.jobs.lease_lost", "{job}", "Jobs dropped because another worker took them"
)
claim_duration = meter.create_histogram("dragonfly.job.claim.duration", "s", "claim call time")
queue_wait = meter.create_histogram("dragonfly.job.queue_wait", "s", "claim time minus run_at")
job_duration = meter.create_histogram("dragonfly.job.duration", "s", "handler time")


@dataclass(frozen=True)
class WorkerSpec:
    """What makes one worker: its name, job types, default poll interval and handlers."""

    title: str  # as printed at start: "Ingest Processor"
    worker_type: str  # heartbeat worker_type and service name suffix: "ingest_processor"
    default_poll_interval: float  # seconds, when WORKER_POLL_INTERVAL is unset
    handlers: Mapping[JobType, Handler]

    @property
    def job_types(self) -> list[JobType]:
        return list(self.handlers)


def handle_smoke_canary(job: Job, context: JobContext) -> None:
    """The smoke suite's canary carries no work: its completion proves a worker is claiming."""


# Every worker also claims the canary (not named in the seed's start line): `python -m smoke
# --canary` enqueues one and waits for a live worker to complete it.
PROBE_HANDLERS: Mapping[JobType, Handler] = {JobType.SMOKE_CANARY: handle_smoke_canary}


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

    # -- one job ---------------------------------------------------------------------------
    def handle(self, queue: QueueClient, job: Job) -> None:
        """Run the job's handler in a `process` span linked to its enqueuer, then settle it."""
        parent = propagate.extract(job.trace_context or {})
        sender = trace.get_current_span(parent).get_span_context()
        attributes: dict[str, str | int] = {
            "messaging.system": "postgresql_queue",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": QUEUE_NAME,
            "messaging.message.id": str(job.id),
            "messaging.consumer.group.name": self.spec.worker_type,
            "dragonfly.job.type": job.job_type,
            "dragonfly.job.attempt": job.attempts,
        }
        # Parent and link: one upload is one trace, and the link marks the hand-over.
        links = [Link(sender)] if sender.is_valid else []
        with tracer.start_as_current_span(
            f"process {QUEUE_NAME}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ) as span:
            started = time.monotonic()
            handler = self.handlers[JobType(job.job_type)]
            context = JobContext(queue.conn, queue, self.worker_id, self.settings)
            try:
                with LeaseKeeper(
                    self.settings.database_url,
                    job.id,
                    self.worker_id,
                    extend_interval=self.settings.worker_lease_extend_interval,
                    heartbeat=lambda side: self.beat(side, WorkerStatus.BUSY),
                    heartbeat_interval=self.settings.worker_heartbeat_interval,
                    lost=context.lease,
                    deadline=context.deadline,
                    connect_kwargs=self.settings.database_connect_kwargs,
                    lock_timeout=self.lock_timeout,
                ):
                    handler(job, context)
            except Exception as error:  # a handler's failure must never end the worker
                if connection_lost(queue.conn, error):
                    raise  # only then: the loop reconnects and resumes the job, still ours
                end_failed_transaction(queue.conn)
                if context.lease_lost() or isinstance(error, LeaseLostError):
                    self.drop_lost(job)
                    return
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.set_attribute("error.type", type(error).__name__)
                self.fail(queue, job, error)
                return
            finally:
                elapsed = time.monotonic() - started
                job_duration.record(elapsed, {"job_type": job.job_type})
                process_duration.record(
                    elapsed,
                    {
                        **base_attributes("process", "process"),
                        "messaging.consumer.group.name": self.spec.worker_type,
                        "dragonfly.job.type": job.job_type,
                    },
                )
            if context.lease_lost():
                self.drop_lost(job)
            elif queue.complete_job(job.id, self.worker_id):
                jobs_completed.add(1, {"job_type": job.job_type})
                logger.info("complete_job: %s (%s)", job.id, job.job_type)
            else:
                logger.warning("complete_job: lease on %s was lost; not completed", job.id)

    def drop_lost(self, job: Job) -> None:
        """Another worker holds the job now: neither complete nor fail it, say so and count it."""
        jobs_lease_lost.add(1, {"job_type": job.job_type})
        logger.warning(
            "lease lost: job %s (%s) belongs to another worker now; not completed or failed",
            job.id,
            job.job_type,
        )

    def fail(self, queue: QueueClient, job: Job, error: Exception) -> None:
        message = failure_message(error)
        permanent = isinstance(error, PermanentJobError)
        outcome = queue.fail_job(job.id, self.worker_id, message, permanent=permanent)
        counter = jobs_dead_lettered if outcome is FailOutcome.DEAD_LETTERED else jobs_failed
        counter.add(1, {"job_type": job.job_type})
        logger.error("fail_job: %s (%s) -> %s: %s", job.id, job.job_type, outcome, message)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> int:
        recovering = False
        while not self.stop.is_set():
            queue = self.connect()
            if queue is None:
                break
            try:
                if recovering:
                    # The connection died mid-job, perhaps mid-claim: a claim can commit on
                    # the server while its answer is lost. Finish whatever is still ours.
                    for job in queue.held_jobs(self.worker_id):
                        logger.info("resuming job %s after reconnect", job.id)
                        self.handle(queue, job)
                    recovering = False
                self.housekeeping(queue, WorkerStatus.IDLE)
                started = time.monotonic()
                jobs = queue.claim_pending_job(
                    list(self.handlers), self.worker_id, lock_timeout=self.lock_timeout
                )
                claim_duration.record(time.monotonic() - started)
                if not jobs:
                    logger.debug(
                        "claim_pending_job: nothing due; next poll in %ss", self.poll_interval
                    )
                    self.stop.wait(self.poll_interval)
                    continue
                self.record_claim(jobs[0])
                self.housekeeping(queue, WorkerStatus.BUSY)
                self.handle(queue, jobs[0])
            except (QueueUnavailableError, psycopg.OperationalError) as error:
                if not connection_lost(self.conn, error):
                    # A statement failed (a timeout, a cancel) but the session lives: no job
                    # is in hand here (a handler's errors fail its job), so just poll again.
                    logger.error("database error: %s", failure_message(error))
                    end_failed_transaction(queue.conn)
                    self.stop.wait(self.poll_interval)
                    continue
                logger.warning("lost the database connection: %s", type(error).__name__)
                self.drop_connection()
                recovering = True
            except QueueError as error:
                logger.error("queue error: %s", error)
                self.stop.wait(self.poll_interval)
        self.goodbye()
        return 0

    def record_claim(self, job: Job) -> None:
        jobs_claimed.add(1, {"job_type": job.job_type})
        wait = (datetime.now(UTC) - job.run_at).total_seconds()
        queue_wait.record(max(wait, 0.0), {"job_type": job.job_type})
        logger.info("claim_pending_job: %s (%s, attempt %d)", job.id, job.job_type, job.attempts)

    def goodbye(self) -> None:
        try:
            if self.conn is not None and not self.conn.broken:
                QueueClient(self.conn).register_heartbeat(
                    self.worker_id, self.spec.worker_type, socket.gethostname(), "stopped"
                )
        except (QueueError, psycopg.Error):
            pass  # the database is gone; v_worker_status will show the worker as stale
        self.drop_connection()
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
    try:
        return worker.run()
    finally:
        telemetry.shutdown()
        sys.stdout.flush()
