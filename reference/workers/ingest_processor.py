"""The Ingest Processor worker: loads an uploaded Simplicity CSV into public.judgments.

One `ingest_csv` job names one batch. The handler marks it processing, then in ONE
transaction streams the stored file through the parser into a staging table, validates it,
records the row errors and upserts the valid rows in ONE statement, and completes the batch
with its counts. When the job fails, the database moves the batch on with it
(ops.ingest_batch_follows_job).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
from opentelemetry import metrics, trace

from reference.config import load_settings_or_exit
from reference.jobqueue import Job, JobType
from reference.simplicity import HeaderError
from reference.sqlfile import NamedQueries
from reference.workers.context import JobContext, PermanentJobError
from reference.workers.ingest_csv import FileStructureError, SimplicityReader
from reference.workers.loop import WorkerSpec, run_worker

CHUNK_BYTES = 1 << 20  # bytes of the stored file read per query
MAX_FIELD_LENGTH = 500  # characters; a longer field is a field_too_long error
EARLIEST_FILING_DATE = date(1900, 1, 1)  # an earlier filing date is a typo in the year
WORK_MEM = "64MB"  # per hash, sort or kept row set: every row of a 10 MB file in memory

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
meter = metrics.get_meter(__name__)
rows_ingested = meter.create_counter(
    "dragonfly.ingest.rows", "{row}", "CSV data rows ingested, by outcome (valid, invalid)"
)
query = NamedQueries("reference.workers", "ingest.sql")


class IngestError(PermanentJobError):
    """An ingest_csv job cannot run and never will: it is dead-lettered with this message."""


class BatchNotFoundError(IngestError):
    """The job's batch does not exist (deleted after upload?)."""


class InvalidPayloadError(IngestError):
    """The job's payload is not {"batch_id": "<uuid>"}."""


def batch_id_of(job: Job) -> UUID:
    """The batch the job is for, or InvalidPayloadError saying what the payload lacks."""
    raw = job.payload.get("batch_id") if isinstance(job.payload, dict) else None
    try:
        return UUID(str(raw))
    except ValueError:
        raise InvalidPayloadError(
            f'ingest_csv job {job.id}: payload must be {{"batch_id": "<uuid>"}}, '
            f"got batch_id={raw!r}"
        ) from None


def read_upload_chunks(conn: psycopg.Connection[Any], batch_id: UUID, size: int) -> Iterator[bytes]:
    """The stored file in CHUNK_BYTES slices, read one query at a time (binary, no hex)."""
    with conn.cursor(binary=True) as cursor:
        for start in range(1, size + 1, CHUNK_BYTES):
            cursor.execute(
                query("read_upload_chunk"),
                {"batch_id": batch_id, "start": start, "length": CHUNK_BYTES},
            )
            row = cursor.fetchone()
            if row is None:
                raise BatchNotFoundError(f"the upload of batch {batch_id} vanished mid-read")
            yield bytes(row[0])


def handle_ingest_csv(job: Job, context: JobContext) -> None:
    """Ingest the job's batch; bad rows become row errors, a bad header fails the batch."""
    batch_id = batch_id_of(job)
    conn = context.conn
    span = trace.get_current_span()
    span.set_attribute("dragonfly.ingest.batch_id", str(batch_id))
    # Its own short transaction, so the API shows progress; fenced and time-limited like all.
    with context.transaction(job):
        context.hold_lease(job)  # the job's row before the batch's, as the queue's trigger
        started = conn.execute(query("start_batch"), {"batch_id": batch_id}).fetchone()
    if started is None:
        raise BatchNotFoundError(
            f"ingest batch {batch_id} does not exist (deleted after upload?); nothing to ingest"
        )
    # Commits only while this worker holds the job (another owner's run commits it instead).
    with context.transaction(job):
        counts = ingest_batch(conn, batch_id, lambda: context.hold_lease(job))
        effect = {"job_id": job.id, "attempt": job.attempts, "worker_id": context.worker_id}
        conn.execute(query("log_effect"), {**effect, "batch_id": batch_id})
    if counts is None:
        return
    total, valid, invalid = counts
    # After commit only: a rolled-back attempt counted nothing.
    rows_ingested.add(valid, {"outcome": "valid"})
    rows_ingested.add(invalid, {"outcome": "invalid"})
    logger.info(
        "ingest_csv: batch %s completed: %d rows, %d valid, %d invalid",
        batch_id,
        total,
        valid,
        invalid,
    )


def ingest_batch(
    conn: psycopg.Connection[Any], batch_id: UUID, fence: Callable[[], None]
) -> tuple[int, int, int] | None:
    """The data work of one batch, inside the caller's transaction; counts, or None if failed.

    `fence` runs before the batch's row is written: it locks the job's row first (the order
    the queue's trigger locks them in), and refuses when the lease is gone.
    """
    ids = {"dragonfly.ingest.batch_id": str(batch_id)}
    size_row = conn.execute(query("upload_size"), {"batch_id": batch_id}).fetchone()
    if size_row is None:
        fence()
        _fail_batch(conn, batch_id, "the batch has no stored upload; upload the file again")
        return None
    reader = SimplicityReader(read_upload_chunks(conn, batch_id, int(size_row[0])))
    with tracer.start_as_current_span("ingest_csv stage_rows", attributes=ids) as span:
        try:
            reader.header()
        except (HeaderError, FileStructureError) as error:
            where = f"header (row {reader.row_number}): " if isinstance(error, HeaderError) else ""
            fence()
            _fail_batch(conn, batch_id, f"{where}{error}")
            return None
        staged, rejected = stage_rows(conn, reader)
        span.set_attributes(
            {"dragonfly.ingest.staged": staged, "dragonfly.ingest.rejected": rejected}
        )
    params = {
        "batch_id": batch_id,
        "max_field_length": MAX_FIELD_LENGTH,
        "earliest_date": EARLIEST_FILING_DATE,
    }
    # One statement validates, records the row errors and upserts (the span used to be two,
    # `validate` and `upsert_judgments`): the checked rows never go through a table.
    with tracer.start_as_current_span("ingest_csv validate_and_upsert", attributes=ids) as span:
        loaded = conn.execute(query("load_rows"), params).fetchone()
        if loaded is None:
            raise RuntimeError("load_rows returned no row")  # it always returns one
        valid, upserted = (int(value) for value in loaded)
        span.set_attributes(
            {"dragonfly.ingest.valid": valid, "dragonfly.ingest.upserted": upserted}
        )
    fence()
    counts = conn.execute(
        query("finish_batch"),
        {"batch_id": batch_id, "staged": staged, "rejected": rejected, "valid": valid},
    ).fetchone()
    if counts is None:
        raise BatchNotFoundError(f"ingest batch {batch_id} was deleted while it was ingested")
    total, valid, invalid = (int(value) for value in counts)
    return total, valid, invalid


def stage_rows(conn: psycopg.Connection[Any], reader: SimplicityReader) -> tuple[int, int]:
    """COPY the reader's blocks into the staging tables; (rows staged, rows rejected)."""
    conn.execute(query("configure_transaction"), {"work_mem": WORK_MEM})
    conn.execute(query("create_stage"))
    conn.execute(query("create_rejected"))
    with_county = "county" in reader.copy_columns()
    copy_rows = query("copy_rows" if with_county else "copy_rows_without_county")
    staged = rejected = 0
    # Each block is read (querying the upload) before its COPY starts: one connection
    # cannot run a query while a COPY is open.
    for block in reader.blocks():
        with conn.cursor() as cursor:
            if block.staged:
                with cursor.copy(copy_rows) as copy:
                    copy.write(block.copy_text)
            if block.rejected:
                with cursor.copy(query("copy_rejected")) as copy:
                    for item in block.rejected:
                        copy.write_row(
                            (item.row_number, item.error_code, item.message, item.raw_row)
                        )
        staged += block.staged
        rejected += len(block.rejected)
    return staged, rejected


def _fail_batch(conn: psycopg.Connection[Any], batch_id: UUID, error: str) -> None:
    conn.execute(query("fail_batch"), {"batch_id": batch_id, "error": error})
    logger.warning("ingest_csv: batch %s failed: %s", batch_id, error)


SPEC = WorkerSpec(
    title="Ingest Processor",
    worker_type="ingest_processor",
    default_poll_interval=2.0,
    handlers={JobType.INGEST_CSV: handle_ingest_csv},
)


def main() -> None:
    """Run the Ingest Processor until SIGTERM."""
    settings = load_settings_or_exit()
    sys.exit(run_worker(settings, SPEC))


if __name__ == "__main__":
    main()
