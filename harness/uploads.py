"""Store a CSV as the API would (batch, upload bytes, ingest_csv job) without going through HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from harness.sql import query
from reference.jobqueue import JobType, QueueClient


def store_upload(conn: psycopg.Connection[Any], csv_path: Path) -> tuple[UUID, UUID]:
    """Create the batch, its stored upload and its ingest_csv job in one transaction."""
    content = csv_path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    with conn.transaction():
        row = conn.execute(
            query("insert_batch"),
            {"filename": csv_path.name, "sha256": digest, "size_bytes": len(content)},
        ).fetchone()
        assert row is not None
        batch_id: UUID = row[0]
        conn.execute(query("insert_upload"), {"batch_id": batch_id, "content": content})
        job_id = QueueClient(conn).queue_job(
            JobType.INGEST_CSV, {"batch_id": str(batch_id)}, idempotency_key=f"{digest}:{batch_id}"
        )
        conn.execute(query("link_batch_job"), {"job_id": job_id, "batch_id": batch_id})
    return batch_id, job_id
