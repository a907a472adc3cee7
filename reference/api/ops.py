"""Operators' views: queue health per job type and worker heartbeats."""

from __future__ import annotations

from fastapi import APIRouter

from reference.api.deps import Connection
from reference.api.errors import error_responses
from reference.api.schemas import QueueHealth, QueueHealthList, SystemStatus, WorkerInfo
from reference.api.sql import fetch_all

router = APIRouter(prefix="/api/v1", tags=["operations"])


@router.get(
    "/ops/queue",
    response_model=QueueHealthList,
    responses=error_responses(500, 503),
    summary="Queue health per job type (ops.v_queue_health)",
)
def queue_health(conn: Connection) -> QueueHealthList:
    rows = fetch_all(conn, "queue_health")
    return QueueHealthList(queues=[QueueHealth.model_validate(row) for row in rows])


@router.get(
    "/system/status",
    response_model=SystemStatus,
    responses=error_responses(500, 503),
    summary="Workers and their last heartbeat (ops.v_worker_status)",
)
def system_status(conn: Connection) -> SystemStatus:
    rows = fetch_all(conn, "worker_status")
    return SystemStatus(workers=[WorkerInfo.model_validate(row) for row in rows])
