"""The demo: upload a fixture CSV through the API, then follow it to plans and packets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from harness.sql import query
from harness.stack.processes import ReferenceStack
from harness.waiting import WaitTimeoutError, wait_until
from reference.pooling import connect_kwargs

T = TypeVar("T")

# Shipped inside the package (not in the repository's fixtures/), so the demo runs from any install.
DEMO_CSV = Path(__file__).resolve().parent / "demo_data" / "simplicity_bad_rows.csv"
WAIT_TIMEOUT = 120.0  # seconds for the batch, then for the enforcement jobs
POLL = 0.25  # seconds


class DemoError(RuntimeError):
    """A demo step did not finish as expected; the message says which and why."""


@dataclass
class DemoResult:
    batch: dict[str, Any]
    strategies: dict[str, int] = field(default_factory=dict)
    packets: int = 0
    total_fees: str = "0.00"
    jobs_by_status: dict[str, int] = field(default_factory=dict)


def _wait(what: str, check: Callable[[], T | None]) -> T:
    try:
        return wait_until(what, check, WAIT_TIMEOUT, POLL)
    except WaitTimeoutError as error:
        raise DemoError(str(error)) from None


def upload_csv(client: httpx.Client, csv_path: Path) -> dict[str, Any]:
    """POST the file to the Intake Station; the 202 body (batch_id, job_id, ...)."""
    response = client.post(
        "/api/v1/intake/upload",
        files={"file": (csv_path.name, csv_path.read_bytes(), "text/csv")},
    )
    if response.status_code != 202:
        raise DemoError(f"upload answered {response.status_code}: {response.text}")
    accepted: dict[str, Any] = response.json()
    return accepted


def finished_batch(client: httpx.Client, batch_id: str) -> dict[str, Any] | None:
    """The batch once it is completed or failed; None while it is still running."""
    batch: dict[str, Any] = client.get(f"/api/v1/intake/batches/{batch_id}").json()
    return batch if batch.get("status") in ("completed", "failed") else None


def run_demo(stack: ReferenceStack, csv_path: Path = DEMO_CSV) -> DemoResult:
    """Upload, wait for the batch, ask for a strategy per judgment, wait for the packets."""
    with (
        stack.client() as client,
        psycopg.connect(stack.database_url, **connect_kwargs(stack.database_url)) as conn,
    ):
        batch_id = str(upload_csv(client, csv_path)["batch_id"])
        batch = _wait(f"batch {batch_id}", lambda: finished_batch(client, batch_id))
        if batch["status"] != "completed":
            raise DemoError(f"batch {batch_id} ended {batch['status']}: {batch}")
        judgments = [
            str(row[0]) for row in conn.execute(query("batch_judgments"), {"batch_id": batch_id})
        ]
        for judgment_id in judgments:
            response = client.post(
                "/api/v1/enforcement/strategy", json={"judgment_id": judgment_id}
            )
            if response.status_code != 202:
                raise DemoError(
                    f"strategy request answered {response.status_code}: {response.text}"
                )

        def packets_ready() -> bool:
            row = conn.execute(query("packet_summary"), {"judgments": judgments}).fetchone()
            return row is not None and row[0] == len(judgments)

        _wait("a draft packet for every judgment", packets_ready)
        result = DemoResult(batch=batch)
        for strategy, count in conn.execute(query("plans_by_strategy"), {"judgments": judgments}):
            result.strategies[strategy] = count
        row = conn.execute(query("packet_summary"), {"judgments": judgments}).fetchone()
        assert row is not None
        result.packets, result.total_fees = row
        for status, count in conn.execute(query("jobs_by_status")):
            result.jobs_by_status[status] = count
    return result
