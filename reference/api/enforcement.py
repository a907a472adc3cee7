"""Enforcement: queue the strategy or drafting job for one judgment."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from fastapi import APIRouter

from reference.api.deps import ApiKey, Connection
from reference.api.errors import ApiError, error_responses
from reference.api.schemas import EnforcementAccepted, EnforcementJobType, EnforcementRequest
from reference.api.sql import fetch_one
from reference.jobqueue import QueueClient

router = APIRouter(prefix="/api/v1/enforcement", tags=["enforcement"])
CODES = {
    "e400": "malformed_json",
    "e401": "invalid_api_key, writes_disabled",
    "e404": "judgment_not_found",
    "e413": "too_large",
    "e422": "invalid_request",
}
STRATEGY_RESPONSES = error_responses(400, 401, 404, 413, 422, 500, 503, **CODES)
DRAFTING_RESPONSES = error_responses(
    400, 401, 404, 409, 413, 422, 500, 503, e409="plan_not_found", **CODES
)


def _epoch(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


def _judgment_state(conn: psycopg.Connection[Any], judgment_id: UUID) -> dict[str, Any]:
    state = fetch_one(conn, "get_judgment_state", {"judgment_id": judgment_id})
    if state is None:
        raise ApiError(
            404,
            "judgment_not_found",
            f"no judgment {judgment_id}: judgments come from ingested CSV batches "
            "(public.judgments.id)",
        )
    return state


def _queue(
    conn: psycopg.Connection[Any], job_type: EnforcementJobType, judgment_id: UUID, key: str
) -> EnforcementAccepted:
    job_id = QueueClient(conn).queue_job(
        job_type, {"judgment_id": str(judgment_id)}, idempotency_key=key
    )
    return EnforcementAccepted(job_id=job_id, judgment_id=judgment_id, job_type=job_type)


@router.post(
    "/strategy",
    status_code=202,
    response_model=EnforcementAccepted,
    responses=STRATEGY_RESPONSES,
    dependencies=[ApiKey],
    summary="Queue an enforcement_strategy job for a judgment",
)
def queue_strategy(request: EnforcementRequest, conn: Connection) -> EnforcementAccepted:
    state = _judgment_state(conn, request.judgment_id)
    # Same judgment and debtor data -> same key -> the same job, however often it is asked.
    key = f"strategy:{request.judgment_id}:{_epoch(state['state_at'])}"
    return _queue(conn, "enforcement_strategy", request.judgment_id, key)


@router.post(
    "/drafting",
    status_code=202,
    response_model=EnforcementAccepted,
    responses=DRAFTING_RESPONSES,
    dependencies=[ApiKey],
    summary="Queue an enforcement_drafting job for a judgment that has a plan",
)
def queue_drafting(request: EnforcementRequest, conn: Connection) -> EnforcementAccepted:
    state = _judgment_state(conn, request.judgment_id)
    if state["plan_id"] is None:
        raise ApiError(
            409,
            "plan_not_found",
            f"judgment {request.judgment_id} has no enforcement plan yet: POST "
            "/api/v1/enforcement/strategy first, then ask for drafting once its job completed",
        )
    # The strategy job enqueues drafting with this same key (one format, made in SQL).
    return _queue(conn, "enforcement_drafting", request.judgment_id, state["drafting_key"])
