"""Intake Station: upload a CSV (stored, batched, queued) and follow its batch."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from reference.api.deps import ApiKey, Connection, checkout, get_pool, get_settings
from reference.api.errors import ApiError, error_responses
from reference.api.schemas import BatchErrors, BatchStatus, RowError, UploadAccepted
from reference.api.sql import fetch_all, fetch_one
from reference.api.uploads import FIELD, check_csv, read_upload, store_upload
from reference.config import Settings

PREFIX = "/api/v1/intake"
UPLOAD_PATH = f"{PREFIX}/upload"
# A batch holds at most a few million rows (MAX_UPLOAD_BYTES); past this an offset is a mistake,
# and past 2**63 - 1 Postgres could not take it (a 500 before this maximum).
MAX_ERROR_OFFSET = 1_000_000_000
router = APIRouter(prefix=PREFIX, tags=["intake"])
BATCH_RESPONSES = error_responses(
    404, 422, 500, 503, e404="batch_not_found", e422="invalid_request"
)
EXAMPLE_CSV = (
    "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
    '2024-CV-0001,Acme Funding LLC,John Doe,"$1,234.56",01/15/2024,Kings\r\n'
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
                            "examples": [EXAMPLE_CSV],
                        }
                    },
                },
                # What makes a generated upload a CSV: its part's type and a .csv file name.
                "encoding": {
                    FIELD: {
                        "contentType": "text/csv",
                        "headers": {
                            "Content-Disposition": {
                                "schema": {
                                    "type": "string",
                                    "example": f'form-data; name="{FIELD}"; '
                                    'filename="judgments.csv"',
                                }
                            }
                        },
                    }
                },
            }
        },
    }
}


def check_and_store_upload(
    pool: ConnectionPool[Any], filename: str, content: bytes, force: bool
) -> UploadAccepted:
    """Check the CSV, then store it (batch, bytes, ingest_csv job) in one transaction."""
    check_csv(content)
    with checkout(pool) as conn:
        return store_upload(conn, filename, content, force=force)


@router.post(
    "/upload",
    status_code=202,
    response_model=UploadAccepted,
    responses=error_responses(
        *(400, 401, 409, 413, 415, 422, 500, 503),
        e400="empty_file, not_utf8, utf16_file, utf32_file, wrong_separator, missing_columns, "
        "duplicate_columns, malformed_csv, invalid_filename, filename_too_long, missing_file, "
        "multiple_files, malformed_multipart, incomplete_upload",
        e401="invalid_api_key, writes_disabled",
        e409="duplicate_file",
        e413="too_large",
        e415="not_csv, not_multipart, compressed_file, zip_file, excel_file, pdf_file",
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
        check_and_store_upload, pool, upload.filename, bytes(upload.content), force
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
    offset: Annotated[int, Query(ge=0, le=MAX_ERROR_OFFSET, description="Errors to skip")] = 0,
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
