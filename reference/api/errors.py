"""API errors: one body shape, one handler that maps every project error to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from reference.jobqueue import QueueBusyError, QueueError, QueueUnavailableError

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "5"  # what a 503 tells clients to wait before retrying
DESCRIPTIONS = {
    400: "Bad request: the body or file is malformed; the message says what to fix",
    401: "Missing or wrong X-DRAGONFLY-API-KEY, or writes are disabled on this server",
    404: "No such resource",
    409: "Conflict with what is already stored",
    413: "The body is too large (an upload: over MAX_UPLOAD_BYTES; JSON: over 64 KiB)",
    415: "The upload is not a CSV file sent as multipart/form-data (its bytes decide: a "
    "compressed, archived, PDF or Excel file is named whatever its name or type)",
    422: "A parameter or body field is invalid; the message names it",
    500: "Unexpected server error; the server log has the details",
    503: "The database is unavailable or busy; retry after a few seconds",
}
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_LOCATIONS = {"query": "query parameter", "path": "path parameter", "header": "header"}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. duplicate_file")
    message: str = Field(description="What is wrong and how to fix it")


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error the API answers with `status` and an ErrorResponse body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_responses(*statuses: int, **codes: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting these statuses with ErrorResponse.

    `codes` names the error codes a status can carry on this route, e.g. `e409="duplicate_file"`.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        known = codes.get(f"e{status}")
        description = DESCRIPTIONS[status] + (f" (error codes: {known})" if known else "")
        responses[status] = {"model": ErrorResponse, "description": description}
    return responses


def database_unavailable(reason: str = "the database is unavailable") -> ApiError:
    return ApiError(
        503,
        "database_unavailable",
        f"{reason}; retry in a few seconds (GET /readyz shows when it is back)",
        {"Retry-After": RETRY_AFTER_SECONDS},
    )


def _field(loc: Sequence[int | str]) -> str:
    if not loc:
        return "request"
    if loc[0] == "body":
        path = ".".join(str(part) for part in loc[1:])
        return f"body field '{path}'" if path else "request body"
    where = _LOCATIONS.get(str(loc[0]), str(loc[0]))
    return f"{where} '{'.'.join(str(part) for part in loc[1:])}'"


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return ApiError(
            400,
            "malformed_json",
            'the request body is not valid JSON: send e.g. {"judgment_id": "<uuid>"} '
            "with Content-Type: application/json",
        )
    # Never echo the input: it may be anything the client sent.
    problems = "; ".join(f"{_field(error['loc'])}: {error['msg']}" for error in errors)
    return ApiError(422, "invalid_request", problems or "the request is invalid")


def _unreadable_body(cause: BaseException) -> ApiError:
    """FastAPI's "There was an error parsing the body", said with what is wrong and the fix."""
    if isinstance(cause, UnicodeDecodeError):
        problem = (
            f"the request body is not UTF-8: byte 0x{cause.object[cause.start]:02x} at offset "
            f"{cause.start} is not valid UTF-8; send JSON encoded as UTF-8"
        )
    else:
        problem = "the request body cannot be read as JSON"
    return ApiError(
        400,
        "malformed_json",
        f'{problem}, e.g. {{"judgment_id": "<uuid>"}} with Content-Type: application/json',
    )


def _http_error(exc: HTTPException) -> ApiError:
    if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not read the body
        return _unreadable_body(exc.__cause__)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return ApiError(exc.status_code, code, str(exc.detail), exc.headers)


def to_api_error(exc: Exception) -> ApiError:
    """Translate any exception into the ApiError the client sees."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if isinstance(exc, QueueUnavailableError | psycopg.OperationalError):
        return database_unavailable()
    if isinstance(exc, QueueBusyError):
        return ApiError(
            503,
            "database_busy",
            "the database is busy; retry in a few seconds",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )
    if isinstance(exc, QueueError | psycopg.Error):
        logger.error("database error: %s", type(exc).__name__, exc_info=exc)
    return ApiError(
        500, "internal_error", "unexpected server error; the server log has the details"
    )


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=error.code, message=error.message))
    return JSONResponse(body.model_dump(), status_code=error.status, headers=error.headers)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: every error becomes an ErrorResponse body."""
    return error_response(to_api_error(exc))


HANDLED = (ApiError, RequestValidationError, HTTPException, QueueError, psycopg.Error, Exception)
