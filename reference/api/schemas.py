"""Request and response models of the API; they are its OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from reference.jobqueue import JobStatus

EnforcementJobType = Literal["enforcement_strategy", "enforcement_drafting"]


class BatchState(StrEnum):
    """The labels of the Postgres enum ops.ingest_batch_status."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class HealthStatus(BaseModel):
    status: Literal["ok"] = "ok"
    service: str = Field(examples=["dragonfly-api"])
    environment: str = Field(examples=["dev", "staging", "prod"])


class ReadyStatus(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"


class UploadAccepted(BaseModel):
    """A stored CSV and the ingest_csv job that will load it."""

    batch_id: UUID
    job_id: UUID
    status: Literal["queued"] = "queued"
    filename: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the uploaded bytes, hex")


class BatchStatus(BaseModel):
    """One ingest batch: where it is and what it loaded so far."""

    batch_id: UUID
    filename: str
    sha256: str
    size_bytes: int
    status: BatchState
    job_id: UUID | None
    job_status: JobStatus | None = Field(description="Status of the batch's ingest_csv job")
    total_rows: int | None
    valid_rows: int | None
    invalid_rows: int | None
    row_error_count: int = Field(description="Row errors recorded (a row may have several)")
    error: str | None = Field(description="Why the whole batch failed, when it did")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RowError(BaseModel):
    row_number: int = Field(description="Spreadsheet row number: the header is row 1")
    error_code: str
    message: str


class BatchErrors(BaseModel):
    """One page of a batch's row errors, ordered by row number."""

    batch_id: UUID
    total: int
    limit: int
    offset: int
    errors: list[RowError]


class EnforcementRequest(BaseModel):
    judgment_id: UUID = Field(description="id of a row of public.judgments")


class EnforcementAccepted(BaseModel):
    """The queued job; the same request in the same state returns the same job."""

    job_id: UUID
    judgment_id: UUID
    job_type: EnforcementJobType


class JobInfo(BaseModel):
    """One job of ops.job_queue (its payload and trace context are not shown)."""

    id: UUID
    job_type: str
    status: JobStatus
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    dead_lettered_at: datetime | None


class QueueHealth(BaseModel):
    """One row of ops.v_queue_health."""

    job_type: str
    pending: int
    ready: int = Field(description="Pending jobs whose run_at has come")
    processing: int
    failed: int
    dead_lettered: int
    oldest_pending_age_seconds: float | None
    stuck: int = Field(
        description="Processing jobs whose lease is older than ops.default_lock_timeout()"
    )


class QueueHealthList(BaseModel):
    queues: list[QueueHealth]


class WorkerInfo(BaseModel):
    """One row of ops.v_worker_status."""

    worker_id: str
    worker_type: str
    hostname: str
    status: str
    started_at: datetime
    last_seen_at: datetime
    seconds_since_last_seen: float
    is_stale: bool = Field(description="No heartbeat for 90 s and not stopped")


class SystemStatus(BaseModel):
    workers: list[WorkerInfo]
