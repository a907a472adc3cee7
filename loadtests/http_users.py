"""HTTP users: EnqueueUser asks the API for enforcement strategies, IntakeUser uploads CSVs.

The API URL is Locust's `--host`; the write key comes from DRAGONFLY_API_KEY.
"""

from __future__ import annotations

import itertools
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from locust import HttpUser, between, task
from locust.exception import StopUser

from harness.inputs.csvgen import write_simplicity_csv
from loadtests.options import API_KEY_ENV, LoadSettings
from loadtests.sql import query
from reference.pooling import connect_kwargs

UPLOAD_ROWS = 50  # rows per generated CSV
BATCH_TIMEOUT = 60.0  # seconds an IntakeUser follows one batch before calling it failed
BATCH_POLL = 0.2  # seconds between batch status requests
JUDGMENTS_PER_USER = 100  # judgment ids an EnqueueUser picks from
_upload_numbers = itertools.count(1)


def _headers() -> dict[str, str]:
    key = os.environ.get(API_KEY_ENV)
    if not key:
        raise StopUser(f"{API_KEY_ENV} is not set: the API's write endpoints need its key")
    return {"X-DRAGONFLY-API-KEY": key}


def generated_csv() -> tuple[str, bytes]:
    """A small Simplicity CSV whose bytes differ on every call (so no 409 duplicate)."""
    seed = (os.getpid() * 1_000 + next(_upload_numbers)) % 1_000_000_000
    with tempfile.TemporaryDirectory(prefix="dragonfly-load-") as folder:
        path = write_simplicity_csv(Path(folder) / f"load-{seed}.csv", UPLOAD_ROWS, seed=seed)
        return path.name, path.read_bytes()


class IntakeUser(HttpUser):
    """Uploads a generated CSV and follows its batch to completion."""

    wait_time = between(0.5, 1.5)

    @task
    def upload_and_follow(self) -> None:
        name, content = generated_csv()
        started = time.perf_counter()
        with self.client.post(
            "/api/v1/intake/upload",
            files={"file": (name, content, "text/csv")},
            headers=_headers(),
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"upload answered {response.status_code}: {response.text[:200]}")
                return
            batch_id = response.json()["batch_id"]
        status, error = self.follow(batch_id)
        self.environment.events.request.fire(
            request_type="batch",
            name="intake batch completed",
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=UPLOAD_ROWS,
            exception=None if status == "completed" else RuntimeError(error),
            context={},
        )

    def follow(self, batch_id: str) -> tuple[str, str]:
        """The batch's final status, or ("timeout", why) after BATCH_TIMEOUT seconds."""
        deadline = time.monotonic() + BATCH_TIMEOUT
        while time.monotonic() < deadline:
            response = self.client.get(
                f"/api/v1/intake/batches/{batch_id}", name="/api/v1/intake/batches/[id]"
            )
            body: dict[str, Any] = response.json() if response.status_code == 200 else {}
            if body.get("status") in ("completed", "failed"):
                return str(body["status"]), f"batch {batch_id} {body['status']}"
            time.sleep(BATCH_POLL)
        return "timeout", f"batch {batch_id} not finished after {BATCH_TIMEOUT:.0f}s"


class EnqueueUser(HttpUser):
    """Asks the API for an enforcement strategy: one enforcement_strategy job per request."""

    wait_time = between(0.05, 0.2)
    judgment_ids: list[str]

    def on_start(self) -> None:
        settings = LoadSettings.from_options(self.environment.parsed_options)
        db_url = settings.require_db_url()
        with psycopg.connect(db_url, autocommit=True, **connect_kwargs(db_url)) as conn:
            rows = conn.execute(query("judgment_ids"), {"limit": JUDGMENTS_PER_USER}).fetchall()
        if not rows:
            raise StopUser("no judgments to enqueue for: run IntakeUser or ingest a CSV first")
        self.judgment_ids = [str(row[0]) for row in rows]

    @task
    def queue_strategy(self) -> None:
        judgment_id = random.choice(self.judgment_ids)  # noqa: S311 -- load spread, not secrets
        with self.client.post(
            "/api/v1/enforcement/strategy",
            json={"judgment_id": judgment_id},
            headers=_headers(),
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"answered {response.status_code}: {response.text[:200]}")
