"""One job's processing: its `process` span, its handler under a lease keeper, its failure.

A job's success is settled afterwards by the loop (reference.workers.settle), together with the
claim of the next job or with the rest of its batch; a failure or a lost lease is settled here,
for that job alone.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from reference.config import Settings
from reference.jobqueue import FailOutcome, Job, JobType, QueueClient
from reference.jobqueue.messaging import QUEUE_NAME, base_attributes, process_duration
from reference.workers.context import Handler, JobContext, LeaseLostError, PermanentJobError
from reference.workers.failures import connection_lost, end_failed_transaction, failure_message
from reference.workers.lease import Heartbeat, LeaseKeeper

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
meter = metrics.get_meter(__name__)
jobs_failed = meter.create_counter("dragonfly.jobs.failed", "{job}", "Job failures (retried)")
jobs_dead_lettered = meter.create_counter(
    "dragonfly.jobs.dead_lettered", "{job}", "Jobs dead-lettered"
)
jobs_lease_lost = meter.create_counter(
    "dragonfly.jobs.lease_lost", "{job}", "Jobs dropped because another worker took them"
)
job_duration = meter.create_histogram("dragonfly.job.duration", "s", "handler time")


class Outcome(enum.Enum):
    """What is left to do for a job once its handler returned."""

    SUCCEEDED = "succeeded"  # the handler finished with the lease held: complete it
    SETTLED = "settled"  # failed (fail_job) or dropped (lease lost): nothing left to do


@dataclass(frozen=True)
class JobRun:
    """A processed job, its outcome, and its `process` span's context (for its settle span)."""

    job: Job
    outcome: Outcome
    trace_context: Context


@dataclass(frozen=True)
class JobProcessor:
    """Runs one job's handler the way every worker does (see `process`)."""

    settings: Settings
    worker_type: str
    worker_id: str
    handlers: Mapping[JobType, Handler]
    beat: Callable[[QueueClient], None]  # a BUSY heartbeat on the lease keeper's connection
    lock_timeout: timedelta | None

    def process(self, queue: QueueClient, job: Job) -> JobRun:
        """Run the job's handler on `queue`'s connection in a `process` span linked to its
        enqueuer; fail it (or drop it, lease lost) on an error. A lost connection is raised:
        the job is still ours, and whoever reconnects resumes it."""
        parent = propagate.extract(job.trace_context or {})
        sender = trace.get_current_span(parent).get_span_context()
        attributes: dict[str, str | int] = {
            **base_attributes("process", "process"),
            "messaging.message.id": str(job.id),
            "messaging.consumer.group.name": self.worker_type,
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
            own_context = trace.set_span_in_context(span)
            started = time.monotonic()
            handler = self.handlers[JobType(job.job_type)]
            context = JobContext(queue.conn, queue, self.worker_id, self.settings)
            try:
                with self.lease_keeper(job, context):
                    handler(job, context)
            except Exception as error:  # a handler's failure must never end the worker
                if connection_lost(queue.conn, error):
                    raise  # only then: the loop reconnects and resumes the job, still ours
                end_failed_transaction(queue.conn)
                if context.lease_lost() or isinstance(error, LeaseLostError):
                    self.drop_lost(job)
                    return JobRun(job, Outcome.SETTLED, own_context)
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.set_attribute("error.type", type(error).__name__)
                self.fail(queue, job, error)
                return JobRun(job, Outcome.SETTLED, own_context)
            finally:
                self.record_duration(job, time.monotonic() - started)
            if context.lease_lost():
                self.drop_lost(job)
                return JobRun(job, Outcome.SETTLED, own_context)
            return JobRun(job, Outcome.SUCCEEDED, own_context)

    def lease_keeper(self, job: Job, context: JobContext) -> LeaseKeeper:
        heartbeat: Heartbeat = self.beat
        return LeaseKeeper(
            self.settings.database_url,
            job.id,
            self.worker_id,
            extend_interval=self.settings.worker_lease_extend_interval,
            heartbeat=heartbeat,
            heartbeat_interval=self.settings.worker_heartbeat_interval,
            lost=context.lease,
            deadline=context.deadline,
            connect_kwargs=self.settings.database_connect_kwargs,
            lock_timeout=self.lock_timeout,
        )

    def record_duration(self, job: Job, elapsed: float) -> None:
        job_duration.record(elapsed, {"job_type": job.job_type})
        attributes: dict[str, Any] = {
            **base_attributes("process", "process"),
            "messaging.consumer.group.name": self.worker_type,
            "dragonfly.job.type": job.job_type,
        }
        process_duration.record(elapsed, attributes)

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
