"""Models that mirror ops.job_queue; rows become models here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class JobStatus(StrEnum):
    """The labels of the Postgres enum ops.job_status."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class JobType(StrEnum):
    """The job types seeded into ops.job_types."""

    INGEST_CSV = "ingest_csv"
    ENFORCEMENT_STRATEGY = "enforcement_strategy"
    ENFORCEMENT_DRAFTING = "enforcement_drafting"
    SMOKE_CANARY = "smoke_canary"
    LOAD_PROBE = "load_probe"


class FailOutcome(StrEnum):
    """What ops.fail_job did with the job."""

    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    LEASE_LOST = "lease_lost"


class WorkerStatus(StrEnum):
    """The statuses ops.register_heartbeat accepts."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Job:
    """One row of ops.job_queue."""

    id: UUID
    job_type: str
    payload: dict[str, Any]
    status: JobStatus
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    locked_at: datetime | None
    locked_by: str | None
    last_error: str | None
    idempotency_key: str | None
    trace_context: dict[str, str] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    dead_lettered_at: datetime | None
    reap_count: int
    # When the current lease expires (the claim's or extension's clock + lock timeout); None
    # when no worker holds the job.
    lease_expires_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(
            id=row["id"],
            job_type=row["job_type"],
            payload=row["payload"],
            status=JobStatus(row["status"]),
            priority=row["priority"],
            run_at=row["run_at"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            locked_at=row["locked_at"],
            locked_by=row["locked_by"],
            last_error=row["last_error"],
            idempotency_key=row["idempotency_key"],
            trace_context=row["trace_context"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            completed_at=row["completed_at"],
            dead_lettered_at=row["dead_lettered_at"],
            reap_count=row["reap_count"],
            lease_expires_at=row.get("lease_expires_at"),
        )
