"""The queue's telemetry by OpenTelemetry's messaging conventions: spans and standard metrics.

Operations are named after the SQL functions (`claim_pending_job`, `complete_job`, ...) and
typed as the conventions say: `send`, `receive` (a claim) or `settle` (complete, fail). A claim
that finds nothing makes no span and no trace (idle polling would flood the backend); its time
still goes into `messaging.client.operation.duration`. A claim that gets jobs is recorded as a
`receive` span placed in the job's own trace, so one upload stays one trace from request to
completion.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, Span, SpanKind

QUEUE_NAME = "ops.job_queue"
MESSAGING_SYSTEM = "postgresql_queue"  # no registered value fits a Postgres table queue

tracer = trace.get_tracer(__name__)
meter = metrics.get_meter(__name__)
sent_messages = meter.create_counter(
    "messaging.client.sent.messages", "{message}", "Jobs enqueued (queue_job)"
)
consumed_messages = meter.create_counter(
    "messaging.client.consumed.messages", "{message}", "Jobs claimed (claim_pending_job)"
)
operation_duration = meter.create_histogram(
    "messaging.client.operation.duration",
    "s",
    "Duration of a queue call: queue_job, claim_pending_job, complete_job, fail_job",
)
process_duration = meter.create_histogram(
    "messaging.process.duration", "s", "Duration of a worker's handling of one job"
)


def base_attributes(operation: str, operation_type: str) -> dict[str, str]:
    return {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.destination.name": QUEUE_NAME,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation_type,
    }


def job_context(trace_context: Mapping[str, str] | None) -> Any:
    """The enqueuer's context (W3C traceparent/tracestate stored with the job)."""
    return propagate.extract(dict(trace_context or {}))


@contextmanager
def client_operation(operation: str, operation_type: str) -> Iterator[Span]:
    """A span for one queue call (PRODUCER for send, CLIENT otherwise) and its duration.

    The span is a child of the current context: the request that enqueues, or the worker's
    `process` span when it settles the job, which keeps the settlement in the job's trace.
    """
    attributes = base_attributes(operation, operation_type)
    kind = SpanKind.PRODUCER if operation_type == "send" else SpanKind.CLIENT
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"{operation} {QUEUE_NAME}", kind=kind, attributes=attributes
    ) as span:
        try:
            yield span
        except Exception as error:
            attributes["error.type"] = type(error).__name__
            span.set_attribute("error.type", attributes["error.type"])
            raise
        finally:
            operation_duration.record(time.perf_counter() - started, attributes)


@contextmanager
def untraced_claim(
    operation: str = "claim_pending_job", operation_type: str = "receive"
) -> Iterator[list[float]]:
    """Run a claim (or a settlement whose spans are placed afterwards: record_settlements)
    without any span (no DB span either); yields [start_ns, seconds]."""
    timing = [float(time.time_ns()), 0.0]
    started = time.perf_counter()
    error_type: str | None = None
    try:
        with suppress_instrumentation():
            yield timing
    except Exception as error:
        error_type = type(error).__name__
        raise
    finally:
        timing[1] = time.perf_counter() - started
        attributes = base_attributes(operation, operation_type)
        if error_type is not None:
            attributes["error.type"] = error_type
        operation_duration.record(timing[1], attributes)


def record_claim(
    start_ns: int, seconds: float, jobs: Sequence[tuple[str, str, Mapping[str, str] | None]]
) -> None:
    """After a claim that got jobs: a `receive` span in the job's trace, and the counter.

    `jobs` holds (job id, job type, trace context). One job: the span's parent is the job's
    enqueuer and it links to it; several: a span of its own, linked to every enqueuer.
    """
    if not jobs:
        return
    attributes: dict[str, Any] = base_attributes("claim_pending_job", "receive")
    attributes["messaging.batch.message_count"] = len(jobs)
    contexts = [job_context(context) for _, _, context in jobs]
    senders = [trace.get_current_span(c).get_span_context() for c in contexts]
    links = [Link(sender) for sender in senders if sender.is_valid]
    parent = contexts[0] if len(jobs) == 1 and senders[0].is_valid else None
    if len(jobs) == 1:
        attributes["messaging.message.id"] = jobs[0][0]
        attributes["dragonfly.job.type"] = jobs[0][1]
    span = tracer.start_span(
        f"claim_pending_job {QUEUE_NAME}",
        context=parent,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        links=links,
        start_time=start_ns,
    )
    span.end(end_time=start_ns + int(seconds * 1e9))
    for job_type, count in Counter(job_type for _, job_type, _ in jobs).items():
        consumed_messages.add(
            count,
            {**base_attributes("claim_pending_job", "receive"), "dragonfly.job.type": job_type},
        )


def record_settlements(
    operation: str,
    start_ns: int,
    seconds: float,
    jobs: Sequence[tuple[str, Any, bool]],
    *,
    duration: bool = True,
) -> None:
    """After one statement settled several jobs: a `settle` span per job, in the job's trace.

    `jobs` holds (job id, parent context, lease held). The statement may also have claimed the
    next jobs (complete_job_and_claim); each settlement still belongs to the trace of the job it
    settles, so its span's parent is that job's `process` span, not whatever is current.
    `duration`: record the statement's time as this operation's (unless already recorded).
    """
    attributes = base_attributes(operation, "settle")
    for job_id, parent, held in jobs:
        span = tracer.start_span(
            f"{operation} {QUEUE_NAME}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                **attributes,
                "messaging.message.id": job_id,
                "dragonfly.lease_held": held,
                "messaging.batch.message_count": len(jobs),
            },
            start_time=start_ns,
        )
        span.end(end_time=start_ns + int(seconds * 1e9))
    if duration:
        operation_duration.record(seconds, attributes)
