"""QueueClient: the typed Python face of the ops.* queue functions (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from opentelemetry import propagate
from opentelemetry.context import Context
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from reference.jobqueue.errors import InvalidArgumentError, UnknownJobTypeError, translate_errors
from reference.jobqueue.messaging import (
    base_attributes,
    client_operation,
    record_claim,
    record_settlements,
    sent_messages,
    untraced_claim,
)
from reference.jobqueue.models import FailOutcome, Job, JobType, WorkerStatus
from reference.jobqueue.sql import query

MAX_BATCH_SIZE = 1000  # jobs per claim and ids per complete_jobs: the SQL functions' own limit
# The lease when none is given: what ops.default_lock_timeout() returns.
DEFAULT_LOCK_TIMEOUT = timedelta(minutes=30)
# A function returning SETOF ops.job_queue that was planned before a migration added a column
# to the table fails once with this (42804) when it runs after the column commits; the failed
# statement changed nothing (autocommit) and the next call is planned anew, so one retry is safe.
ROWTYPE_CHANGED = "structure of query does not match function result type"
KNOWN_JOB_TYPES = ", ".join(job_type.value for job_type in JobType)


def job_type_name(job_type: JobType | str) -> str:
    """The job type's name, or UnknownJobTypeError naming the known ones."""
    try:
        return JobType(job_type).value
    except ValueError:
        raise UnknownJobTypeError(
            f"unknown job type {job_type!r}: expected one of {KNOWN_JOB_TYPES}"
        ) from None


def _require_worker_id(worker_id: str) -> None:
    if not isinstance(worker_id, str) or not worker_id.strip():
        raise InvalidArgumentError("worker_id must be a non-empty string, e.g. '<hostname>-<pid>'")


def _lock_timeout(lock_timeout: timedelta | None) -> timedelta | None:
    """A positive lease length, or None for the database's ops.default_lock_timeout()."""
    if lock_timeout is not None and lock_timeout <= timedelta(0):
        raise InvalidArgumentError(
            f"lock_timeout must be positive (got {lock_timeout}), or None for the "
            "database's default (ops.default_lock_timeout())"
        )
    return lock_timeout


def _claim_params(
    job_types: Iterable[JobType | str],
    worker_id: str,
    batch_size: int,
    lock_timeout: timedelta | None = None,
) -> dict[str, Any]:
    names = [job_type_name(job_type) for job_type in job_types]
    if not names:
        raise InvalidArgumentError("job_types must name at least one job type")
    _require_worker_id(worker_id)
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidArgumentError(
            f"batch_size must be between 1 and {MAX_BATCH_SIZE} (got {batch_size})"
        )
    return {
        "job_types": names,
        "worker_id": worker_id,
        "batch_size": batch_size,
        "lock_timeout": _lock_timeout(lock_timeout),
    }


def _settle_ids(job_ids: Iterable[UUID], operation: str) -> list[UUID]:
    ids = list(job_ids)
    if len(ids) > MAX_BATCH_SIZE:
        raise InvalidArgumentError(
            f"{operation} takes at most {MAX_BATCH_SIZE} ids (got {len(ids)}); complete in batches"
        )
    return ids


def _claimed(rows: list[dict[str, Any]], timing: list[float]) -> list[Job]:
    """The claimed jobs of a claim's rows, recorded as one receive (metrics and spans)."""
    jobs = [Job.from_row(row) for row in rows]
    record_claim(
        int(timing[0]), timing[1], [(str(j.id), j.job_type, j.trace_context) for j in jobs]
    )
    return jobs


class QueueClient:
    """Calls the queue's SQL functions over one autocommit connection (one statement each)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit:
            raise InvalidArgumentError(
                "QueueClient needs an autocommit connection: each queue function is its own "
                "transaction; open it with psycopg.connect(..., autocommit=True)"
            )
        self.conn = conn

    def _rows(self, operation: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with translate_errors(operation):
            try:
                return self._execute(operation, params)
            except psycopg.errors.DatatypeMismatch as error:
                if ROWTYPE_CHANGED not in str(error):
                    raise
                return self._execute(operation, params)  # a migration changed the row type

    def _execute(self, operation: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query(operation), params)
            return cursor.fetchall()

    def _value(self, operation: str, params: Mapping[str, Any]) -> Any:
        rows = self._rows(operation, params)
        return next(iter(rows[0].values()))

    def queue_job(
        self,
        job_type: JobType | str,
        payload: Mapping[str, Any] | None = None,
        *,
        priority: int = 0,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        trace_context: Mapping[str, str] | None = None,
        max_attempts: int = 5,
    ) -> UUID:
        """Enqueue a job and return its id (the existing id for a known idempotency key).

        Runs in a `send` span; unless trace_context is given, that span's context is stored
        with the job so the worker's `process` span joins the enqueuer's trace.
        """
        if run_at is not None and run_at.tzinfo is None:
            raise InvalidArgumentError("run_at must be timezone-aware, e.g. datetime.now(UTC)")
        name = job_type_name(job_type)
        with client_operation("send", "send") as span:
            span.set_attribute("dragonfly.job.type", name)
            carrier = dict(trace_context or {})
            if not carrier:
                propagate.inject(carrier)
            job_id: UUID = self._value(
                "queue_job",
                {
                    "job_type": name,
                    "payload": Jsonb(dict(payload or {})),
                    "priority": priority,
                    "run_at": run_at,
                    "idempotency_key": idempotency_key,
                    "trace_context": Jsonb(carrier) if carrier else None,
                    "max_attempts": max_attempts,
                },
            )
            span.set_attribute("messaging.message.id", str(job_id))
        sent_messages.add(1, {**base_attributes("send", "send"), "dragonfly.job.type": name})
        return job_id

    def claim_pending_job(
        self,
        job_types: Iterable[JobType | str],
        worker_id: str,
        batch_size: int = 1,
        *,
        lock_timeout: timedelta | None = None,
    ) -> list[Job]:
        """Claim up to batch_size due jobs, highest priority first, then oldest run_at, each
        leased for lock_timeout (the worker's WORKER_LOCK_TIMEOUT; None: the database's
        default, 30 minutes)."""
        params = _claim_params(job_types, worker_id, batch_size, lock_timeout)
        with untraced_claim() as timing:
            rows = self._rows("claim_pending_job", params)
        return _claimed(rows, timing)

    def complete_job_and_claim(
        self,
        job_id: UUID,
        worker_id: str,
        job_types: Iterable[JobType | str],
        batch_size: int = 1,
        *,
        lock_timeout: timedelta | None = None,
        trace_parent: Context | None = None,
    ) -> tuple[bool, list[Job]]:
        """Complete the job this worker holds and claim the next ones, in one round trip and
        one commit: (completed, claimed). completed is False when the lease was lost (fenced,
        as complete_job); the claim happens either way. An error leaves both undone. The
        completion's `settle` span goes under `trace_parent` (the job's `process` span)."""
        params = {**_claim_params(job_types, worker_id, batch_size, lock_timeout), "job_id": job_id}
        with untraced_claim() as timing:
            rows = self._rows("complete_job_and_claim", params)
        # The same id can come back claimed (reaped, pending again, claimed by this call): a
        # completion is the job's row in status completed.
        completed = bool(rows) and rows[0]["id"] == job_id and rows[0]["status"] == "completed"
        settled = [(str(job_id), trace_parent, completed)]
        record_settlements("complete_job", int(timing[0]), timing[1], settled)
        return completed, _claimed(rows[1:] if completed else rows, timing)

    def complete_jobs_and_claim(
        self,
        job_ids: Iterable[UUID],
        worker_id: str,
        job_types: Iterable[JobType | str],
        batch_size: int = 1,
        *,
        lock_timeout: timedelta | None = None,
        trace_parents: Mapping[UUID, Context] | None = None,
    ) -> tuple[set[UUID], list[Job]]:
        """complete_jobs, then claim the next batch, in one round trip and one commit:
        (the ids completed, the jobs claimed). Fenced as complete_jobs; the claim happens
        either way; an error leaves both undone. `trace_parents` as for complete_jobs."""
        ids = _settle_ids(job_ids, "complete_jobs_and_claim")
        params = {**_claim_params(job_types, worker_id, batch_size, lock_timeout), "job_ids": ids}
        with untraced_claim() as timing:
            rows = self._rows("complete_jobs_and_claim", params)
        completed = set(rows[0]["completed_ids"]) if rows else set()
        if trace_parents is not None:  # as complete_jobs: a span per job only for its trace
            settled = [(str(i), trace_parents.get(i), i in completed) for i in ids]
            record_settlements("complete_jobs", int(timing[0]), timing[1], settled)
        claimed = [row for row in rows if row["id"] is not None]
        return completed, _claimed(claimed, timing)

    def complete_job(self, job_id: UUID, worker_id: str) -> bool:
        """True when completed; False when this worker no longer holds the job (fenced)."""
        _require_worker_id(worker_id)
        with client_operation("complete_job", "settle") as span:
            span.set_attribute("messaging.message.id", str(job_id))
            completed = bool(
                self._value("complete_job", {"job_id": job_id, "worker_id": worker_id})
            )
            span.set_attribute("dragonfly.lease_held", completed)
        return completed

    def complete_jobs(
        self,
        job_ids: Iterable[UUID],
        worker_id: str,
        *,
        trace_parents: Mapping[UUID, Context] | None = None,
    ) -> set[UUID]:
        """Complete many jobs in one round trip; returns the ids completed (fenced: a job this
        worker no longer holds is left alone and missing from the result). `trace_parents`:
        each job's `process` span, under which its own `settle` span goes."""
        _require_worker_id(worker_id)
        ids = _settle_ids(job_ids, "complete_jobs")
        if not ids:
            return set()
        with untraced_claim(operation="complete_jobs", operation_type="settle") as timing:
            rows = self._rows("complete_jobs", {"job_ids": ids, "worker_id": worker_id})
        completed = {row["id"] for row in rows}
        if trace_parents is not None:
            settled = [(str(i), trace_parents.get(i), i in completed) for i in ids]
            record_settlements("complete_jobs", int(timing[0]), timing[1], settled, duration=False)
        return completed

    def fail_job(
        self, job_id: UUID, worker_id: str, error: str, *, permanent: bool = False
    ) -> FailOutcome:
        """Retry with backoff or dead-letter (at once when `permanent`: no retry can help);
        LEASE_LOST when this worker lost the job."""
        _require_worker_id(worker_id)
        params = {"job_id": job_id, "worker_id": worker_id, "error": error, "permanent": permanent}
        with client_operation("fail_job", "settle") as span:
            span.set_attribute("messaging.message.id", str(job_id))
            outcome = FailOutcome(self._value("fail_job", params))
            span.set_attribute("dragonfly.fail.outcome", outcome.value)
        return outcome

    def extend_lock(
        self, job_id: UUID, worker_id: str, *, lock_timeout: timedelta | None = None
    ) -> bool:
        """Refresh the lease for lock_timeout more (None: the database's default); False when
        this worker no longer holds the job."""
        _require_worker_id(worker_id)
        params = {
            "job_id": job_id,
            "worker_id": worker_id,
            "lock_timeout": _lock_timeout(lock_timeout),
        }
        return bool(self._value("extend_lock", params))

    def reap_stuck_jobs(self, lock_timeout: timedelta | None = None) -> list[Job]:
        """Return expired leases to pending or dead-letter them; returns the reaped rows.

        A job's lease expires at its own lease_expires_at (its claimer's lock timeout), whoever
        reaps. `lock_timeout` dates only a lease taken without an expiry (claimed before
        migration 0011); None: the database's ops.default_lock_timeout() (30 minutes).
        """
        params = {"lock_timeout": _lock_timeout(lock_timeout)}
        return [Job.from_row(row) for row in self._rows("reap_stuck_jobs", params)]

    def register_heartbeat(
        self, worker_id: str, worker_type: str, hostname: str, status: WorkerStatus | str
    ) -> None:
        """Record that this worker is alive and what it is doing."""
        _require_worker_id(worker_id)
        try:
            status_name = WorkerStatus(status).value
        except ValueError:
            known = ", ".join(member.value for member in WorkerStatus)
            raise InvalidArgumentError(
                f"unknown worker status {status!r}: expected one of {known}"
            ) from None
        self._rows(
            "register_heartbeat",
            {
                "worker_id": worker_id,
                "worker_type": worker_type,
                "hostname": hostname,
                "status": status_name,
            },
        )

    def held_jobs(self, worker_id: str) -> list[Job]:
        """The jobs this worker holds (processing under its lease), e.g. after a reconnect."""
        _require_worker_id(worker_id)
        return [Job.from_row(row) for row in self._rows("held_jobs", {"worker_id": worker_id})]

    def get_job(self, job_id: UUID) -> Job | None:
        """The job with this id, or None."""
        rows = self._rows("get_job", {"job_id": job_id})
        return Job.from_row(rows[0]) if rows else None
