"""The Ingest Processor's handler, in-process, against a real Postgres."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from harness.inputs.csvgen import SPOILERS, write_simplicity_csv
from harness.inputs.uploads import store_upload_bytes
from harness.stack.demo import DEMO_CSV
from reference.config import Settings, load_settings
from reference.jobqueue import Job, JobType, QueueClient
from reference.workers import ingest_csv, ingest_processor
from reference.workers.context import JobContext
from reference.workers.ingest_processor import (
    BatchNotFoundError,
    InvalidPayloadError,
    handle_ingest_csv,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"
HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
WORKER = "test-worker"


@dataclass
class Ingest:
    """Stores uploads as the API does, claims their jobs and runs the handler."""

    conn: psycopg.Connection[Any]
    queue: QueueClient
    settings: Settings

    def upload(self, content: bytes, filename: str = "upload.csv") -> tuple[UUID, Job]:
        batch_id, job_id = store_upload_bytes(self.conn, filename, content)
        [job] = self.queue.claim_pending_job([JobType.INGEST_CSV], WORKER)
        assert job.id == job_id
        return batch_id, job

    def run(self, job: Job) -> None:
        handle_ingest_csv(job, JobContext(self.conn, self.queue, WORKER, self.settings))

    def file(self, content: bytes) -> UUID:
        batch_id, job = self.upload(content)
        self.run(job)
        return batch_id

    def batch(self, batch_id: UUID) -> tuple[Any, ...]:
        row = self.conn.execute(
            "SELECT status::text, total_rows, valid_rows, invalid_rows, error "
            "FROM ops.ingest_batches WHERE id = %s",
            (batch_id,),
        ).fetchone()
        assert row is not None
        return tuple(row)

    def errors(self, batch_id: UUID) -> list[tuple[int, str, str]]:
        return [
            (row[0], row[1], row[2])
            for row in self.conn.execute(
                "SELECT row_number, error_code, message FROM ops.ingest_row_errors "
                "WHERE batch_id = %s ORDER BY row_number, error_code",
                (batch_id,),
            )
        ]

    def judgments(self, batch_id: UUID | None = None) -> dict[str, tuple[Any, ...]]:
        rows = self.conn.execute(
            "SELECT case_number, plaintiff, defendant, judgment_amount, filing_date, county "
            "FROM public.judgments WHERE %(batch)s::uuid IS NULL OR source_batch_id = %(batch)s",
            {"batch": batch_id},
        )
        return {row[0]: tuple(row[1:]) for row in rows}

    def judgment_lines(self, batch_id: UUID) -> list[str]:
        """Each judgment of the batch as one `|`-separated line, in case number order."""
        return [
            "|".join("" if value is None else str(value) for value in (case, *values))
            for case, values in sorted(self.judgments(batch_id).items())
        ]

    def judgment_versions(self) -> dict[str, tuple[Any, ...]]:
        rows = self.conn.execute(
            "SELECT case_number, id, updated_at, source_batch_id FROM public.judgments"
        )
        return {row[0]: tuple(row[1:]) for row in rows}


@pytest.fixture
def ingest(db_conn: psycopg.Connection[Any], queue: QueueClient, database_url: str) -> Ingest:
    return Ingest(db_conn, queue, load_settings({"DATABASE_URL": database_url}))


def fixture(name: str) -> bytes:
    return (DEMO_CSV if name == DEMO_CSV.name else FIXTURES / name).read_bytes()


def test_the_clean_fixture_becomes_ten_judgments_with_parsed_amounts_and_dates(
    ingest: Ingest,
) -> None:
    batch_id = ingest.file(fixture("simplicity_clean.csv"))

    assert ingest.batch(batch_id) == ("completed", 10, 10, 0, None)
    assert ingest.errors(batch_id) == []
    assert ingest.judgments(batch_id)["CV-2024-000101"] == (
        *("Midland Funding LLC", "Smith, John"),
        *(Decimal("1234.56"), date(2024, 3, 15), "Kings"),
    )
    assert ingest.judgment_lines(batch_id) == [
        "CV-2024-000101|Midland Funding LLC|Smith, John|1234.56|2024-03-15|Kings",
        "CV-2024-000102|Discover Bank|Maria Garcia|2500.00|2024-04-02|Queens",
        "CV-2024-000103|Portfolio Recovery Associates, LLC|Wei Chen|980.00|2024-01-05|Bronx",
        "CV-2024-000104|LVNV Funding LLC|Aisha Okafor|12000.00|2023-11-30|New York",
        "CV-2024-000105|Capital One Bank (USA), N.A.|Sean O'Brien|15750.00|2023-12-01|Richmond",
        "CV-2024-000106|Cavalry SPV I, LLC|Olga Kowalski|499.99|2024-02-29|Nassau",
        "CV-2024-000107|Midland Funding LLC|Luis Rossi|1000000.00|2022-07-04|Suffolk",
        "CV-2024-000108|Discover Bank|Fatima Nguyen|75.50|2021-09-09|Erie",
        "CV-2024-000109|Midland Funding LLC|Ana Smith|0.99|2020-10-31|Kings",
        "CV-2024-000110|Discover Bank|James Chen|3200.00|2019-01-15|",  # County is optional
    ]
    row = ingest.conn.execute(
        "SELECT started_at <= finished_at FROM ops.ingest_batches WHERE id = %s", (batch_id,)
    ).fetchone()
    assert row == (True,)


BAD_ROW_ERRORS = [
    (
        4,
        "missing_case_number",
        "Case Number is empty: every row needs the court's case number, e.g. CV-2024-001234",
    ),
    (5, "missing_plaintiff", "Plaintiff is empty: fill in the creditor's name"),
    (6, "missing_defendant", "Defendant is empty: fill in the debtor's name"),
    (8, "missing_amount", "Judgment Amount is empty: enter the amount awarded, e.g. $1,234.56"),
    (
        9,
        "invalid_amount",
        "Judgment Amount '-$75.00' is negative: enter the amount awarded without a minus sign "
        "or parentheses",
    ),
    (
        10,
        "invalid_date",
        "Filing Date '02/30/2024' is not a real calendar date: check the month and the day",
    ),
    (
        11,
        "missing_filing_date",
        "Filing Date is empty: enter the date the judgment was filed, as MM/DD/YYYY or YYYY-MM-DD",
    ),
    (
        12,
        "duplicate_case_number",
        "Case Number 'CV-2024-000201' repeats row 2: the first row wins; remove this row or "
        "correct its case number",
    ),
    (
        13,
        "field_too_long",
        "Too long (more than 500 characters): Defendant. Shorten the value, or check that every "
        "double quote in the row is closed",
    ),
    (
        14,
        "wrong_column_count",
        "The row has 4 fields but the header has 6: quote fields that contain commas, and keep "
        "one field per header column",
    ),
    (
        15,
        "invalid_text",
        "The row contains a NUL character or bytes that are not UTF-8: re-save the file as "
        "UTF-8 text (in Excel: CSV UTF-8)",
    ),
    (
        18,
        "invalid_amount",
        "Judgment Amount '12.345' has more than 2 decimal places: round it to whole cents, "
        "e.g. $1,234.56",
    ),
    (
        18,
        "invalid_date",
        "Filing Date '13/45/2024' is not a real calendar date: check the month and the day",
    ),
    (18, "missing_plaintiff", "Plaintiff is empty: fill in the creditor's name"),
]


def test_the_bad_rows_fixture_records_every_error_code_with_row_and_message(
    ingest: Ingest,
) -> None:
    batch_id = ingest.file(fixture("simplicity_bad_rows.csv"))

    assert ingest.batch(batch_id) == ("completed", 16, 4, 12, None)
    assert ingest.errors(batch_id) == BAD_ROW_ERRORS
    # The duplicate on row 12 lost: row 2's values stand.
    assert ingest.judgment_lines(batch_id) == [
        "CV-2024-000201|Midland Funding LLC|Smith, John|1234.56|2024-03-15|Kings",
        "CV-2024-000202|Discover Bank|Maria Garcia|2500.00|2024-04-02|Queens",
        "CV-2024-000215|Portfolio Recovery Associates, LLC|Sean O'Brien|1000.00|2023-12-01|"
        "Richmond",
        'CV-2024-000216|Midland Funding LLC|Rossi, "Lucky" Luis|1234.00|2024-02-05|Erie',
    ]
    raw = ingest.conn.execute(
        "SELECT row_number, raw_row FROM ops.ingest_row_errors "
        "WHERE batch_id = %s AND raw_row IS NOT NULL ORDER BY 1",
        (batch_id,),
    ).fetchall()
    assert raw == [
        (14, "CV-2024-000213,Discover Bank,Sean O'Brien,$5.00"),
        (15, "CV-2024-000214,Discover Bank,Bad\ufffdName,$5.00,2024-01-02,Kings"),
    ]


def test_aliases_a_bom_crlf_and_reordered_columns_map_onto_the_right_fields(
    ingest: Ingest,
) -> None:
    batch_id = ingest.file(fixture("simplicity_aliases_bom.csv"))

    assert ingest.batch(batch_id) == ("completed", 5, 5, 0, None)
    assert ingest.judgment_lines(batch_id) == [
        "CV-2023-000301|Discover Bank|Garcia, Maria|2500.00|2023-06-01|Queens",
        "CV-2023-000302|Midland Funding LLC|Chen Wei|980.00|2023-01-05|Bronx",
        "CV-2023-000303|LVNV Funding LLC|O'Brien, Sean|1000.00|2022-12-01|Kings",
        "CV-2023-000304|Cavalry SPV I, LLC|Nguyễn Văn An|75.50|2022-12-31|",
        "CV-2023-000305|Discover Bank|Müller, Jürgen|1234.00|2021-02-28|Erie",
    ]


AMOUNTS = [  # (cell, parsed amount or the error message's reason)
    ("$1,234.56", Decimal("1234.56")),
    ("1234.56", Decimal("1234.56")),
    ("1234", Decimal("1234.00")),
    ("$ 1,234", Decimal("1234.00")),
    ("$0.5", Decimal("0.50")),
    ("$999,999,999,999.99", Decimal("999999999999.99")),
    ("-5", "is negative"),
    ("($5.00)", "is negative"),
    ("12.345", "has more than 2 decimal places"),
    ("12abc", "contains letters"),
    ("1,23", "is not a money amount"),
    ("$1000000000000", "is larger than $999,999,999,999.99"),
    ("1.234,56", "is not a money amount"),
]
DATES = [  # (cell, parsed date or the error message's reason)
    ("3/4/2024", date(2024, 3, 4)),
    ("03/04/2024", date(2024, 3, 4)),
    ("2024-3-4", date(2024, 3, 4)),
    ("2024-02-29", date(2024, 2, 29)),
    ("02/29/2023", "is not a real calendar date"),
    ("2024-13-01", "is not a real calendar date"),
    ("2024/01/02", "is not written as MM/DD/YYYY or YYYY-MM-DD"),
    ("March 4 2024", "is not written as MM/DD/YYYY or YYYY-MM-DD"),
    ("3/4/24", "is not written as MM/DD/YYYY or YYYY-MM-DD"),
    ("01/02/1899", "is before 1900-01-01"),
    ("01/01/2999", "is in the future"),
]


def test_amount_and_date_rules(ingest: Ingest) -> None:
    lines = [f'CV-A{n},P,D,"{cell}",1/1/2024,K' for n, (cell, _) in enumerate(AMOUNTS)]
    lines += [f"CV-D{n},P,D,1,{cell},K" for n, (cell, _) in enumerate(DATES)]
    batch_id = ingest.file((HEADER + "\n".join(lines) + "\n").encode())

    judgments = ingest.judgments(batch_id)
    messages = {row: message for row, _, message in ingest.errors(batch_id)}
    for n, (cell, expected) in enumerate(AMOUNTS):
        if isinstance(expected, Decimal):
            assert judgments[f"CV-A{n}"][2] == expected, cell
        else:
            assert messages[n + 2].startswith(f"Judgment Amount '{cell}' {expected}"), cell
    for n, (cell, expected_date) in enumerate(DATES):
        if isinstance(expected_date, date):
            assert judgments[f"CV-D{n}"][3] == expected_date, cell
        else:
            row = len(AMOUNTS) + n + 2
            assert messages[row].startswith(f"Filing Date '{cell}' {expected_date}"), cell


def snapshot(ingest: Ingest, batch_id: UUID) -> tuple[Any, ...]:
    row_errors = ingest.conn.execute(
        "SELECT id, row_number, error_code, message, raw_row FROM ops.ingest_row_errors "
        "WHERE batch_id = %s ORDER BY id",
        (batch_id,),
    ).fetchall()
    return ingest.batch(batch_id), row_errors, ingest.judgment_versions()


def test_running_the_same_job_again_duplicates_nothing(ingest: Ingest) -> None:
    batch_id, job = ingest.upload(fixture("simplicity_bad_rows.csv"))
    ingest.run(job)
    first = snapshot(ingest, batch_id)
    ingest.run(job)

    assert snapshot(ingest, batch_id) == first
    assert len(first[1]) == 14
    assert len(first[2]) == 4


def test_a_second_batch_of_the_same_file_changes_no_judgment(ingest: Ingest) -> None:
    content = fixture("simplicity_bad_rows.csv")
    first = ingest.file(content)
    before = ingest.judgment_versions()
    second = ingest.file(content)

    assert ingest.batch(second) == ingest.batch(first) == ("completed", 16, 4, 12, None)
    assert ingest.errors(second) == ingest.errors(first)
    # Unchanged judgments are left alone: same id, updated_at and source batch.
    assert ingest.judgment_versions() == before
    assert {source for _, _, source in before.values()} == {first}


def test_a_changed_row_updates_its_judgment_and_only_that_one(ingest: Ingest) -> None:
    content = fixture("simplicity_clean.csv")
    first = ingest.file(content)
    before = ingest.judgment_versions()
    second = ingest.file(content.replace(b"2500.00,2024-04-02", b"2600.00,2024-04-02"))

    after = ingest.judgment_versions()
    assert ingest.judgments()["CV-2024-000102"][2] == Decimal("2600.00")
    assert after["CV-2024-000102"][0] == before["CV-2024-000102"][0]  # same judgment id
    assert after["CV-2024-000102"][1] > before["CV-2024-000102"][1]
    assert after["CV-2024-000102"][2] == second
    unchanged = {case for case in after if case != "CV-2024-000102"}
    assert {case: after[case] for case in unchanged} == {case: before[case] for case in unchanged}
    assert {after[case][2] for case in unchanged} == {first}


@pytest.mark.slow
def test_a_generated_20000_row_file(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks and blocks: upload reads and COPYs alternate many times on one connection.
    monkeypatch.setattr(ingest_processor, "CHUNK_BYTES", 64 * 1024 + 1)
    monkeypatch.setattr(ingest_csv, "BLOCK_ROWS", 3_000)
    path = write_simplicity_csv(tmp_path / "big.csv", 20_000, seed=3, invalid_every=7)
    batch_id = ingest.file(path.read_bytes())

    invalid = 20_000 // 7
    assert ingest.batch(batch_id) == ("completed", 20_000, 20_000 - invalid, invalid, None)
    codes = Counter(code for _, code, _ in ingest.errors(batch_id))
    expected = Counter(SPOILERS[n % len(SPOILERS)][0] for n in range(invalid))
    assert codes == expected
    assert len(ingest.judgments(batch_id)) == 20_000 - invalid
    row = ingest.conn.execute(
        "SELECT count(DISTINCT row_number), min(row_number), max(row_number) "
        "FROM ops.ingest_row_errors WHERE batch_id = %s",
        (batch_id,),
    ).fetchone()
    assert row == (invalid, 8, 20_000 // 7 * 7 + 1)  # data row n is spreadsheet row n + 1


def test_an_unclosed_quote_rejects_its_row_and_the_rest_of_the_file_loads(
    ingest: Ingest,
) -> None:
    content = HEADER + 'CV-1,"' + "x" * 140_000 + "\nCV-2,P,D,1,1/1/2024,K\n"
    batch_id = ingest.file(content.encode())

    assert ingest.batch(batch_id) == ("completed", 2, 1, 1, None)
    [(row, code, message)] = ingest.errors(batch_id)
    assert (row, code) == (2, "field_too_long")
    assert "a double quote is probably never closed" in message
    assert list(ingest.judgments(batch_id)) == ["CV-2"]


def test_a_header_only_upload_completes_with_zero_rows(ingest: Ingest) -> None:
    batch_id = ingest.file(HEADER.encode())

    assert ingest.batch(batch_id) == ("completed", 0, 0, 0, None)


def test_a_header_without_required_columns_fails_the_batch_with_the_reason(
    ingest: Ingest,
) -> None:
    batch_id = ingest.file(b"Case Number,Plaintiff,County\nCV-1,P,Kings\n")

    status, total, valid, invalid, error = ingest.batch(batch_id)
    assert (status, total, valid, invalid) == ("failed", None, None, None)
    assert error.startswith("header (row 1): missing required column(s): ")
    assert "Defendant, Judgment Amount, Filing Date" in error
    assert ingest.errors(batch_id) == []


def test_a_deleted_batch_fails_the_job_with_a_clear_error(ingest: Ingest) -> None:
    batch_id, job = ingest.upload(fixture("simplicity_clean.csv"))
    ingest.conn.execute("DELETE FROM ops.ingest_batches WHERE id = %s", (batch_id,))

    with pytest.raises(BatchNotFoundError, match=f"ingest batch {batch_id} does not exist"):
        ingest.run(job)
    assert ingest.judgments() == {}


def test_a_payload_without_a_batch_id_fails_the_job(ingest: Ingest) -> None:
    ingest.queue.queue_job(JobType.INGEST_CSV, {"batch": "nope"})
    [job] = ingest.queue.claim_pending_job([JobType.INGEST_CSV], WORKER)

    with pytest.raises(InvalidPayloadError, match="payload must be"):
        ingest.run(job)


def test_a_failure_mid_ingest_leaves_nothing_half_done(ingest: Ingest) -> None:
    ingest.conn.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'judgments are read-only'; END $$"
    )
    ingest.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON public.judgments "
        "FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    batch_id, job = ingest.upload(fixture("simplicity_bad_rows.csv"))

    with pytest.raises(psycopg.errors.RaiseException) as raised:
        ingest.run(job)
    # The worker records the failure; the batch follows its job (ops.ingest_batch_follows_job).
    ingest.queue.fail_job(job.id, WORKER, f"RaiseException: {raised.value}")
    status, total, valid, invalid, error = ingest.batch(batch_id)
    assert (status, total, valid, invalid) == ("queued", None, None, None)
    assert error.startswith("waiting to retry: attempt 1 of 5 failed (RaiseException: judgments")
    assert ingest.errors(batch_id) == []  # the row errors rolled back with the rest
    started = ingest.conn.execute(
        "SELECT started_at FROM ops.ingest_batches WHERE id = %s", (batch_id,)
    ).fetchone()
    assert started is not None
    assert started[0] is not None  # committed on its own, before the data work

    ingest.conn.execute("DROP TRIGGER refuse ON public.judgments")
    ingest.conn.execute("UPDATE ops.job_queue SET run_at = now() WHERE id = %s", (job.id,))
    [job] = ingest.queue.claim_pending_job([JobType.INGEST_CSV], WORKER)
    ingest.run(job)
    assert ingest.batch(batch_id) == ("completed", 16, 4, 12, None)
    assert len(ingest.errors(batch_id)) == 14
