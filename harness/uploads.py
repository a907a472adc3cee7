"""Store a CSV as the API would (batch, upload bytes, ingest_csv job) without going through HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from reference.jobqueue import JobType, QueueClient


def store_upload(conn: psycopg.Connection[Any], csv_path: Path) -> tuple[UUID, UUID]:
    """Create the batch, its stored upload and its ingest_csv job in one transaction."""
    content = csv_path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO ops.ingest_batches (filename, file_sha256, size_bytes) "
            "VALUES (%s, %s, %s) RETURNING id",
            (csv_path.name, digest, len(content)),
        ).fetchone()
        assert row is not None
        batch_id: UUID = row[0]
        conn.execute(
            "INSERT INTO ops.ingest_uploads (batch_id, content) VALUES (%s, %s)",
            (batch_id, content),
        )
        job_id = QueueClient(conn).queue_job(
            JobType.INGEST_CSV, {"batch_id": str(batch_id)}, idempotency_key=f"{digest}:{batch_id}"
        )
        conn.execute("UPDATE ops.ingest_batches SET job_id = %s WHERE id = %s", (job_id, batch_id))
    return batch_id, job_id
