"""Store a CSV as the API does (batch, upload bytes, ingest_csv job) without going through HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from reference.api import store_upload as store_api_upload


def store_upload_bytes(
    conn: psycopg.Connection[Any], filename: str, content: bytes
) -> tuple[UUID, UUID]:
    """The API's own store (forced: the same bytes may be stored again); (batch_id, job_id)."""
    stored = store_api_upload(conn, filename, content, force=True)
    return stored.batch_id, stored.job_id


def store_upload(conn: psycopg.Connection[Any], csv_path: Path) -> tuple[UUID, UUID]:
    """Store the file at `csv_path`; (batch_id, job_id)."""
    return store_upload_bytes(conn, csv_path.name, csv_path.read_bytes())
