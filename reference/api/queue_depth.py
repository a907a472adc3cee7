"""The dragonfly.queue.depth gauge: jobs by type and status, read from ops.job_queue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from reference.api.sql import fetch_all
from reference.jobqueue import JobStatus, JobType

GAUGE_NAME = "dragonfly.queue.depth"
OPEN_STATUSES = (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.FAILED)  # completed left out
OBSERVE_TIMEOUT = 1.0  # seconds the callback waits for a connection; it runs on the export thread

logger = logging.getLogger(__name__)


def observe_queue_depth(pool: ConnectionPool[Any] | None) -> list[Observation]:
    """One observation per job type and open status (zeros included); none when down."""
    if pool is None:
        return []
    try:
        with pool.connection(timeout=OBSERVE_TIMEOUT) as conn:
            rows = fetch_all(conn, "queue_depth")
    except (PoolTimeout, PoolClosed, psycopg.Error) as error:
        logger.debug("queue depth not observed: %s", type(error).__name__)
        return []
    # Every job type and status gets a point, 0 included: a dashboard shows a line at zero.
    depth = {(job_type.value, status.value): 0 for job_type in JobType for status in OPEN_STATUSES}
    for row in rows:
        depth[(row["job_type"], row["status"])] = row["depth"]
    return [
        Observation(count, {"job_type": job_type, "status": status})
        for (job_type, status), count in depth.items()
    ]


def register_queue_depth_gauge(pool_of: Callable[[], ConnectionPool[Any] | None]) -> None:
    """Register the gauge; `pool_of` gives the pool at observation time (None when closed)."""

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return observe_queue_depth(pool_of())

    metrics.get_meter(__name__).create_observable_gauge(
        GAUGE_NAME,
        callbacks=[callback],
        unit="{job}",
        description="Jobs in ops.job_queue by job_type and status (completed jobs left out)",
    )
