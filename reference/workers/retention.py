"""Retention: the workers delete old history, like the reaper, one worker at a time."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
from opentelemetry.instrumentation.utils import suppress_instrumentation

from reference.config import Settings
from reference.sqlfile import NamedQueries

PRUNE_BATCH_SIZE = 5000  # rows of each kind deleted per call at most: short locks, short WAL bursts

logger = logging.getLogger(__name__)
query = NamedQueries("reference.workers", "retention.sql")


def prune_history(conn: psycopg.Connection[Any], settings: Settings) -> tuple[int, int, int]:
    """One bounded prune; (completed jobs, dead-lettered jobs, heartbeat rows) deleted."""
    params = {
        "completed_age": timedelta(seconds=settings.retain_completed_jobs),
        "dead_lettered_age": timedelta(seconds=settings.retain_dead_lettered_jobs),
        "stopped_worker_age": timedelta(seconds=settings.retain_stopped_workers),
        "batch_size": PRUNE_BATCH_SIZE,
    }
    with suppress_instrumentation():
        row = conn.execute(query("prune_history"), params).fetchone()
    counts = (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))
    if any(counts):
        logger.info(
            "prune_history: deleted %d completed jobs, %d dead-lettered jobs, %d heartbeat rows",
            *counts,
        )
    return counts
