"""Jobs: one row of ops.job_queue, as operators need to see it."""

from __future__ import annotations

from dataclasses import asdict
from uuid import UUID

from fastapi import APIRouter

from reference.api.deps import Connection
from reference.api.errors import ApiError, error_responses
from reference.api.schemas import JobInfo
from reference.jobqueue import QueueClient

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get(
    "/{job_id}",
    response_model=JobInfo,
    responses=error_responses(404, 422, 500, 503, e404="job_not_found", e422="invalid_request"),
    summary="A job's status, attempts and last error",
)
def get_job(job_id: UUID, conn: Connection) -> JobInfo:
    job = QueueClient(conn).get_job(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id} in ops.job_queue")
    return JobInfo.model_validate(asdict(job))
