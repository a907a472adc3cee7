"""What a new user writes first: the advertised fixtures, from an installed wheel."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy
from pydantic import PostgresDsn, TypeAdapter
from sqlalchemy.engine import make_url

from harness.waiting import wait_until

CSV = (
    "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
    'NU-2026-1,Acme Credit,Jane Roe,"$1,234.56",03/15/2026,Kings\n'
)


def test_database_url_is_a_url_that_url_clients_accept(database_url: str) -> None:
    TypeAdapter(PostgresDsn).validate_python(database_url)
    url = make_url(database_url).set(drivername="postgresql+psycopg")
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sqlalchemy.text("SELECT count(*) FROM ops.job_queue")).scalar()
    engine.dispose()
    assert count == 0
    password = make_url(database_url).password
    assert password
    assert password not in repr(database_url)


def test_queue_and_db_conn(queue, db_conn) -> None:  # type: ignore[no-untyped-def]
    job_id = queue.queue_job("load_probe", {"n": 1})
    [job] = queue.claim_pending_job(["load_probe"], "new-user-1")
    assert job.id == job_id
    assert queue.complete_job(job_id, "new-user-1")
    status = db_conn.execute("SELECT status FROM ops.job_queue WHERE id = %s", (job_id,))
    assert status.fetchone()[0] == "completed"


def test_reference_stack_exports_to_the_collector(reference_stack, otel_collector) -> None:  # type: ignore[no-untyped-def]
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        response = client.post(
            "/api/v1/intake/upload", files={"file": ("one.csv", CSV.encode(), "text/csv")}
        )
        assert response.status_code == 202, response.text
        batch_id = response.json()["batch_id"]

        def finished() -> dict[str, object] | None:
            batch = client.get(f"/api/v1/intake/batches/{batch_id}").json()
            return batch if batch["status"] in ("completed", "failed") else None

        batch = wait_until("the batch", finished, timeout=60)
    assert (batch["status"], batch["valid_rows"]) == ("completed", 1)
    otel_collector.wait_for_spans(
        lambda spans: any(s.name == "process ops.job_queue" for s in spans)
    )
    assert httpx.get(f"{reference_stack.api_url}/health").status_code == 200
    assert Path(reference_stack.log_dir).is_dir()
