"""An in-memory model of the queue contract (SPEC §2) that predicts what each call returns.

The state machine (`tests/stateful`) runs it beside the real SQL and compares every result;
the history checker (`harness.model.history`) uses its rules. Time is the model's `now`, which the
tests also give the SQL through `ops.clock()` (frozen with `dragonfly.clock_frozen_at`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from reference.jobqueue import DEFAULT_LOCK_TIMEOUT

MAX_BACKOFF = timedelta(hours=1)
BASE_BACKOFF = timedelta(seconds=30)
BACKOFF_EXPONENT_CAP = 20  # the SQL caps the exponent the same way
TERMINAL_STATUSES = frozenset({"completed", "failed"})


def retry_backoff(attempts: int) -> timedelta:
    """min(30 s * 2^attempts, 1 h), as ops.retry_backoff computes it."""
    exponent = min(max(attempts, 0), BACKOFF_EXPONENT_CAP)
    backoff: timedelta = BASE_BACKOFF * (2**exponent)
    return min(backoff, MAX_BACKOFF)


@dataclass
class ModelJob:
    """What the model knows of one row of ops.job_queue."""

    job_type: str
    priority: int
    run_at: datetime
    max_attempts: int
    status: str = "pending"
    attempts: int = 0
    locked_at: datetime | None = None
    locked_by: str | None = None
    reap_count: int = 0
    dead_lettered_at: datetime | None = None
    completed_at: datetime | None = None
    # Set by a claim or an extension (the clock + the caller's lock timeout); None off lease.
    lease_expires_at: datetime | None = None
    former_owners: set[str] = field(default_factory=set)

    def row(self) -> tuple[object, ...]:
        """The columns the model predicts, in the order `MODEL_ROWS_QUERY` reads them."""
        return (
            self.status,
            self.priority,
            self.run_at,
            self.attempts,
            self.locked_at,
            self.locked_by,
            self.reap_count,
            self.dead_lettered_at,
            self.completed_at,
            self.lease_expires_at,
        )


# Every job's id and the columns the model predicts, in ModelJob.row() order.
MODEL_ROWS_QUERY = (
    "SELECT id, status::text, priority, run_at, attempts, locked_at, locked_by, reap_count, "
    "dead_lettered_at, completed_at, lease_expires_at FROM ops.job_queue"
)


@dataclass
class QueueModel:
    """The queue's rules over ModelJobs; each method returns what the SQL must return."""

    now: datetime
    jobs: dict[UUID, ModelJob] = field(default_factory=dict)
    keys: dict[tuple[str, str], UUID] = field(default_factory=dict)

    def existing_for_key(self, job_type: str, idempotency_key: str | None) -> UUID | None:
        """The job a repeated idempotency key must return, or None for a new job."""
        if idempotency_key is None:
            return None
        return self.keys.get((job_type, idempotency_key))

    def add(
        self,
        job_id: UUID,
        job_type: str,
        *,
        priority: int,
        run_at: datetime | None,
        max_attempts: int,
        idempotency_key: str | None,
    ) -> None:
        """Record a newly enqueued job (run_at None: due now)."""
        self.jobs[job_id] = ModelJob(job_type, priority, run_at or self.now, max_attempts)
        if idempotency_key is not None:
            self.keys[(job_type, idempotency_key)] = job_id

    def claimable(self, job_types: Iterable[str], skip: Iterable[UUID] = ()) -> list[UUID]:
        """Due pending jobs of these types in claim order, leaving out locked ones."""
        wanted, skipped = set(job_types), set(skip)
        due = [
            (job_id, job)
            for job_id, job in self.jobs.items()
            if job.status == "pending"
            and job.job_type in wanted
            and job.run_at <= self.now
            and job_id not in skipped
        ]
        due.sort(key=lambda item: (-item[1].priority, item[1].run_at, item[0]))
        return [job_id for job_id, _ in due]

    def predict_claim(
        self, job_types: Iterable[str], batch_size: int, skip: Iterable[UUID] = ()
    ) -> list[UUID]:
        """The ids a claim returns, in order; it locks exactly these (a concurrent claim in
        another session skips them, and only them, while its transaction is open)."""
        return self.claimable(job_types, skip)[:batch_size]

    def apply_claim(
        self, job_ids: Iterable[UUID], worker_id: str, lock_timeout: timedelta | None = None
    ) -> None:
        for job_id in job_ids:
            job = self.jobs[job_id]
            job.status, job.attempts = "processing", job.attempts + 1
            job.locked_at, job.locked_by = self.now, worker_id
            job.lease_expires_at = self.now + (lock_timeout or DEFAULT_LOCK_TIMEOUT)

    def holds(self, job_id: UUID, worker_id: str) -> bool:
        """Whether worker_id holds the live lease the fenced calls require."""
        job = self.jobs[job_id]
        return job.status == "processing" and job.locked_by == worker_id

    def complete(self, job_id: UUID, worker_id: str) -> bool:
        if not self.holds(job_id, worker_id):
            return False
        job = self.jobs[job_id]
        job.status, job.completed_at, job.locked_at = "completed", self.now, None
        job.lease_expires_at = None
        return True

    def complete_many(self, job_ids: Iterable[UUID], worker_id: str) -> set[UUID]:
        """ops.complete_jobs: the ids this worker held, now completed."""
        return {job_id for job_id in set(job_ids) if self.complete(job_id, worker_id)}

    def _retry_or_dead_letter(self, job: ModelJob, permanent: bool = False) -> str:
        if job.locked_by is not None:
            job.former_owners.add(job.locked_by)
        job.locked_at = job.locked_by = job.lease_expires_at = None
        if permanent or job.attempts >= job.max_attempts:
            job.status, job.dead_lettered_at = "failed", self.now
            return "dead_lettered"
        job.status, job.run_at = "pending", self.now + retry_backoff(job.attempts)
        job.dead_lettered_at = None
        return "retry_scheduled"

    def fail(self, job_id: UUID, worker_id: str, permanent: bool = False) -> str:
        if not self.holds(job_id, worker_id):
            return "lease_lost"
        return self._retry_or_dead_letter(self.jobs[job_id], permanent)

    def extend(self, job_id: UUID, worker_id: str, lock_timeout: timedelta | None = None) -> bool:
        if not self.holds(job_id, worker_id):
            return False
        job = self.jobs[job_id]
        job.locked_at = self.now
        job.lease_expires_at = self.now + (lock_timeout or DEFAULT_LOCK_TIMEOUT)
        return True

    def expired(self, lock_timeout: timedelta) -> set[UUID]:
        """Processing jobs whose own lease expired (strictly before now); lock_timeout dates
        only a lease without an expiry (the reaper's argument, for pre-0011 leases)."""
        expired = set()
        for job_id, job in self.jobs.items():
            if job.status != "processing" or job.locked_at is None:
                continue
            expires = job.lease_expires_at or job.locked_at + lock_timeout
            if expires < self.now:
                expired.add(job_id)
        return expired

    def reap(self, lock_timeout: timedelta) -> dict[UUID, str]:
        """Reap expired leases; returns each reaped job's new status."""
        reaped = {}
        for job_id in self.expired(lock_timeout):
            job = self.jobs[job_id]
            job.reap_count += 1
            self._retry_or_dead_letter(job)
            reaped[job_id] = job.status
        return reaped

    def rows(self) -> dict[UUID, tuple[object, ...]]:
        return {job_id: job.row() for job_id, job in self.jobs.items()}
