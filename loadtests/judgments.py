"""Judgments for EnqueueUser to ask strategies for: one small CSV ingested through the API."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import psycopg

from harness.inputs.csvgen import write_simplicity_csv
from harness.stack.demo import DemoError, finished_batch, upload_csv
from harness.waiting import wait_until
from loadtests.sql import query
from reference.pooling import connect_kwargs

SEED_CSV_ROWS = 200
SEED_CSV_SEED = 97  # its case numbers stay apart from the IntakeUser's generated files
INGEST_TIMEOUT = 120.0  # seconds for the seed batch to be ingested


def ensure_judgments(db_url: str, api_url: str, api_key: str | None) -> int:
    """Judgments on hand; uploads and waits for one generated CSV when there are none."""
    with psycopg.connect(db_url, autocommit=True, **connect_kwargs(db_url)) as conn:
        if conn.execute(query("judgment_ids"), {"limit": 1}).fetchall():
            return 0
    headers = {"X-DRAGONFLY-API-KEY": api_key} if api_key else {}
    with (
        tempfile.TemporaryDirectory(prefix="dragonfly-load-") as folder,
        httpx.Client(base_url=api_url, headers=headers, timeout=30.0) as client,
    ):
        path = Path(folder) / "load-judgments.csv"
        write_simplicity_csv(path, SEED_CSV_ROWS, seed=SEED_CSV_SEED)
        try:
            batch_id = str(upload_csv(client, path)["batch_id"])
        except DemoError as error:
            raise RuntimeError(
                f"could not upload the judgments EnqueueUser needs: {error}"
            ) from None
        batch = wait_until(
            "the load run's seed CSV to be ingested",
            lambda: finished_batch(client, batch_id),
            INGEST_TIMEOUT,
            0.25,
        )
    if batch["status"] != "completed":
        raise RuntimeError(f"the seed CSV's batch {batch_id} ended {batch['status']}")
    return int(batch.get("valid_rows") or 0)
