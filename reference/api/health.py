"""Liveness (`/`, `/health`: no database) and readiness (`/readyz`: the database answers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from reference.api.deps import Connection, get_settings
from reference.api.errors import error_responses
from reference.api.schemas import HealthStatus, ReadyStatus
from reference.api.sql import execute
from reference.config import Settings

SERVICE_NAME = "dragonfly-api"
router = APIRouter(tags=["health"])


@router.get("/", response_model=HealthStatus, summary="Liveness (Railway's health check)")
@router.get("/health", response_model=HealthStatus, summary="Liveness; never touches the database")
def health(settings: Annotated[Settings, Depends(get_settings)]) -> HealthStatus:
    return HealthStatus(service=SERVICE_NAME, environment=settings.environment.value)


@router.get(
    "/readyz",
    response_model=ReadyStatus,
    responses=error_responses(500, 503),
    summary="Readiness: 200 when the database answers SELECT 1",
)
def ready(conn: Connection) -> ReadyStatus:
    execute(conn, "select_one")
    return ReadyStatus()
