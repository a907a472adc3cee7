"""Intake Station: upload a CSV (stored, batched, queued) and follow its batch."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from reference.api.deps import ApiKey, Connection, checkout, get_pool, get_settings
from reference.api.errors import ApiError, error_responses
from reference.api.schemas import BatchErrors, BatchStatus, RowError, UploadAccepted
from reference.api.sql import execute, fetch_all, fetch_one
from reference.api.uploads import FIELD, check_csv, read_upload
from reference.config import Settings
from reference.jobqueue import JobType, QueueClient

PREFIX = "/api/v1/intake"
UPLOAD_PATH = f"{PREFIX}/upload"
router = APIRouter(prefix=PREFIX, tags=["intake"])
BATCH_RESPONSES = error_responses(
    404, 422, 500, 503, e404="batch_not_found", e422="invalid_request"
)
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "The Simplicity CSV export (UTF-8, with a header row)",
                        }
                    },
                }
            }
        },
    }
}


def _queue_ingest(conn: psycopg.Connection[Any], batch_id: UUID, sha256: str, force: bool) -> UUID:
    queue = QueueClient(conn)
    payload = {"batch_id": str(batch_id)}
    own_key = f"{sha256}:{batch_id}"
    job_id = queue.queue_job(
        JobType.INGEST_CSV, payload, idempotency_key=own_key if force else sha256
    )
    if not force:
        job = queue.get_job(job_id)
        if job is None or job.payload != payload:
            # A job for these bytes outlived its batch (deleted by hand): this batch needs its own.
            job_id = queue.queue_job(JobType.INGEST_CSV, payload, idempotency_key=own_key)
    return job_id


def store_upload(
    pool: ConnectionPool[Any], filename: str, content: bytes, force: bool
) -> UploadAccepted:
    """Check the CSV, then store batch, bytes and ingest_csv job in one transaction."""
    check_csv(content)
    sha256 = hashlib.sha256(content).hexdigest()
    params = {"sha256": sha256, "filename": filename, "size_bytes": len(content)}
    with checkout(pool) as conn, conn.transaction():
        # Two uploads of the same new bytes: the second waits here, then sees the first.
        execute(conn, "lock_file_sha256", params)
        existing = fetch_one(conn, "find_batch_by_sha256", params)
        if existing is not None and not force:
            raise ApiError(
                409,
                "duplicate_file",
                f"this file (sha256 {sha256}) was already uploaded as batch {existing['id']} "
                f"(status {existing['status']}); follow it at /api/v1/intake/batches/"
                f"{existing['id']}, or upload again with ?force=true to ingest it again",
            )
        batch = fetch_one(conn, "insert_batch", params)
        assert batch is not None  # INSERT ... RETURNING always returns the row
        batch_id: UUID = batch["id"]
        execute(conn, "insert_upload", {"batch_id": batch_id, "content": content})
        job_id = _queue_ingest(conn, batch_id, sha256, force)
        execute(conn, "set_batch_job", {"batch_id": batch_id, "job_id": job_id})
    return UploadAccepted(
        batch_id=batch_id, job_id=job_id, filename=filename, size_bytes=len(content), sha256=sha256
    )


@router.post(
    "/upload",
    status_code=202,
    response_model=UploadAccepted,
    responses=error_responses(
        *(400, 401, 409, 413, 415, 422, 500, 503),
        e400="empty_file, not_utf8, missing_columns, malformed_csv, missing_file, "
        "multiple_files, malformed_multipart",
        e401="invalid_api_key, writes_disabled",
        e409="duplicate_file",
        e413="too_large",
        e415="not_csv, not_multipart",
        e422="invalid_request",
        e503="database_unavailable, database_busy",
    ),
    openapi_extra=UPLOAD_BODY,
    dependencies=[ApiKey],
    summary="Upload a Simplicity CSV; it is stored and an ingest_csv job is queued",
)
async def upload_csv(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
    force: Annotated[
        bool, Query(description="Ingest the file again even if these bytes were uploaded before")
    ] = False,
) -> UploadAccepted:
    upload = await read_upload(request, settings.max_upload_bytes)
    return await run_in_threadpool(
        store_upload, pool, upload.filename, bytes(upload.content), force
    )


@router.get(
    "/batches/{batch_id}",
    response_model=BatchStatus,
    responses=BATCH_RESPONSES,
    summary="A batch's status and row counts",
)
def get_batch(batch_id: UUID, conn: Connection) -> BatchStatus:
    row = fetch_one(conn, "get_batch", {"batch_id": batch_id})
    if row is None:
        raise _batch_not_found(batch_id)
    return BatchStatus.model_validate(row)


@router.get(
    "/batches/{batch_id}/errors",
    response_model=BatchErrors,
    responses=BATCH_RESPONSES,
    summary="A batch's row errors, by row number",
)
def get_batch_errors(
    batch_id: UUID,
    conn: Connection,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, description="Errors to skip")] = 0,
) -> BatchErrors:
    params = {"batch_id": batch_id, "limit": limit, "offset": offset}
    counted = fetch_one(conn, "count_batch_errors", params)
    if counted is None:
        raise _batch_not_found(batch_id)
    errors = [RowError.model_validate(row) for row in fetch_all(conn, "list_batch_errors", params)]
    return BatchErrors(
        batch_id=batch_id, total=counted["total"], limit=limit, offset=offset, errors=errors
    )


def _batch_not_found(batch_id: UUID) -> ApiError:
    return ApiError(
        404,
        "batch_not_found",
        f"no ingest batch {batch_id}: use the batch_id returned by POST /api/v1/intake/upload",
    )
