"""Hypothesis-generated hostile CSV files through the real API and Ingest Processor processes.

Each file varies header aliases, column order, extra columns, separators (';', tab, '|'),
encodings (UTF-16/32 by BOM too), quoting (an unclosed quote too), line endings, blank lines,
huge fields, NUL bytes, formula-like cells, duplicate case numbers and header rows repeated
mid-file. Every file must hold: no 5xx; a file the upload refuses gets the 4xx its defect
calls for and stores nothing; an accepted file's batch completes with a total equal to the data
rows the generator wrote (its own count, not the parser's), valid + invalid = total, and each
invalid row has an error with a code, and every judgment the batch wrote holds the values of
a row of the file (trimmed; the case number compared as its key); the worker never crashes.
DRAGONFLY_HOSTILE_CSV_EXAMPLES sets the number of files (default 60).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until
from reference.simplicity import COLUMN_ALIASES, REQUIRED_COLUMNS, map_header

EXAMPLES = int(os.environ.get("DRAGONFLY_HOSTILE_CSV_EXAMPLES", "60"))
BATCH_TIMEOUT = 30.0  # seconds the worker gets for one generated file
HUGE = 140_000  # characters: over csv.field_size_limit() (131072)
FORMULAS = ["=1+2", "+SUM(A1:A9)", "-2+3", "@cmd", '=HYPERLINK("http://x")', "=cmd|' /C calc'!A0"]
CASES = ["CV-1", "CV-2", "CV-3", "=CV-4", "CV 5"]  # a small pool: duplicate keys are common
SAFE = st.text(st.characters(categories=["L", "N"], max_codepoint=0x7E), min_size=1, max_size=8)
cell = st.one_of(
    st.sampled_from(["Acme LLC", "John Doe", "$1,234.56", "12.50", "01/15/2024", "2024-02-29"]),
    st.sampled_from(FORMULAS),
    st.text(max_size=12),  # any characters: commas, quotes, newlines, NUL, non-ASCII
    st.sampled_from(["", " ", "P\x00x", "Zoë", "a,b", 'say "hi"', "two\nlines"]),
)


@dataclass(frozen=True)
class GeneratedCsv:
    content: bytes
    data_rows: int  # rows the generator wrote that are not blank: the batch's expected total
    refusal: str | None  # the error code the upload must answer with, or None: accepted
    # (case key, plaintiff, defendant) of every whole row: what a stored judgment may hold
    records: frozenset[tuple[str, str, str]] = frozenset()

    def __repr__(self) -> str:  # huge fields: show where they are, not 140 kB of them
        shown = self.content if len(self.content) < 2000 else self.content[:1500] + b"..."
        return f"GeneratedCsv({shown!r}, {len(self.content)} bytes, {self.data_rows} data rows)"


def header_strategy() -> st.SearchStrategy[tuple[list[str], str | None]]:
    """Header names (aliases, case, order, extra columns) and the refusal they call for."""

    @st.composite
    def header(draw: st.DrawFn) -> tuple[list[str], str | None]:
        columns = [*REQUIRED_COLUMNS, *draw(st.lists(st.just("county"), max_size=1))]
        refusal = None
        if draw(st.integers(0, 9)) == 0:
            columns.remove(draw(st.sampled_from(REQUIRED_COLUMNS)))
            refusal = "missing_columns"
        elif draw(st.integers(0, 9)) == 0:
            columns.append(draw(st.sampled_from(columns)))
            refusal = "duplicate_columns"
        names = [draw(st.sampled_from(COLUMN_ALIASES[column])) for column in columns]
        names = [draw(st.sampled_from([name, name.upper(), name.title()])) for name in names]
        names += draw(st.lists(st.sampled_from(["Notes", "Id", "Balance Due"]), max_size=2))
        return draw(st.permutations(names)), refusal

    return header()


@st.composite
def csv_files(draw: st.DrawFn) -> GeneratedCsv:
    names, refusal = draw(header_strategy())
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    if separator != ",":
        refusal = "wrong_separator"  # named before the columns are looked at
    positions = map_header(names).positions if refusal is None else {}
    records: set[tuple[str, str, str]] = set()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=ending, quoting=quoting, delimiter=separator)
    # csv.writer quotes only line-end characters of its own terminator: a field holding any
    # line end is quoted, as every CSV reader needs it.
    quoted_writer = csv.writer(
        buffer, lineterminator=ending, quoting=csv.QUOTE_ALL, delimiter=separator
    )
    buffer.write(ending * draw(st.integers(0, 2)))  # blank lines before the header
    writer.writerow(names)
    data_rows = 0
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(
            st.sampled_from(["row", "row", "row", "short", "long", "blank", "huge", "header"])
        )
        if kind == "blank":
            buffer.write(ending)
            continue
        if kind == "header":  # two exports pasted together: a repeated_header row error
            writer.writerow(names)
            data_rows += 1
            continue
        fields = [draw(st.sampled_from(CASES)), *(draw(cell) for _ in names[1:])]
        if kind == "short":
            fields = fields[: draw(st.integers(1, len(fields) - 1))] if len(fields) > 1 else []
        elif kind == "long":
            fields.append(draw(cell))
        elif kind == "huge":
            fields[-1] = draw(st.sampled_from(["x", "é", "=", ","])) * HUGE
        if kind == "row" and positions:
            records.add(
                (
                    fields[positions["case_number"]].strip().lower(),
                    fields[positions["plaintiff"]].strip(),
                    fields[positions["defendant"]].strip(),
                )
            )
        has_line_end = any("\r" in field or "\n" in field for field in fields)
        (quoted_writer if has_line_end else writer).writerow(fields)
        data_rows += bool("".join(fields).strip())
    if draw(st.booleans()):  # an unclosed quote, then rows with no quote that could close it
        buffer.write(f'{draw(SAFE)},"{draw(SAFE)}{ending}')
        data_rows += 1
        for _ in range(draw(st.integers(0, 3))):
            buffer.write(",".join(draw(SAFE) for _ in names) + ending)
            data_rows += 1
    return encoded(draw, buffer.getvalue(), data_rows, refusal, frozenset(records))


def encoded(
    draw: st.DrawFn,
    text: str,
    data_rows: int,
    refusal: str | None,
    records: frozenset[tuple[str, str, str]],
) -> GeneratedCsv:
    """The file in a drawn encoding, with the refusal its encoding calls for (checked first)."""
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-32"]))
    try:
        content = text.encode(encoding)
    except UnicodeEncodeError:
        content = text.encode("utf-8")
    else:
        if encoding in {"utf-16", "utf-32"}:  # with a BOM: named before anything is decoded
            return GeneratedCsv(content, data_rows, encoding.replace("-", "") + "_file")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        refusal = "not_utf8"  # the upload checks the encoding before the header
    return GeneratedCsv(content, data_rows, refusal, records)


def counts(conn: psycopg.Connection[Any], batch_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT b.status::text, b.total_rows, b.valid_rows, b.invalid_rows,"
        " (SELECT count(DISTINCT e.row_number) FROM ops.ingest_row_errors e"
        "  WHERE e.batch_id = b.id),"
        " (SELECT count(*) FROM ops.ingest_row_errors e"
        "  WHERE e.batch_id = b.id AND (e.error_code = '' OR e.message = ''))"
        " FROM ops.ingest_batches b WHERE b.id = %s",
        (batch_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.slow
def test_hostile_csv_files_through_the_real_upload_and_worker(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.start_api()
    worker = reference_stack.start_worker("ingest")
    seen = {"accepted": 0, "refused": 0}

    with reference_stack.client() as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(generated=csv_files())
        def check(generated: GeneratedCsv) -> None:
            batches_before = db_conn.execute("SELECT count(*) FROM ops.ingest_batches").fetchone()
            response = upload(client, generated.content)
            assert response.status_code < 500, response.text
            if generated.refusal is not None:
                seen["refused"] += 1
                assert response.status_code == 400, response.text
                assert response.json()["error"]["code"] == generated.refusal, response.text
                after = db_conn.execute("SELECT count(*) FROM ops.ingest_batches").fetchone()
                assert after == batches_before  # nothing stored
                return
            seen["accepted"] += 1
            assert response.status_code == 202, response.text
            batch_id = response.json()["batch_id"]

            def finished() -> tuple[Any, ...] | None:
                found = counts(db_conn, batch_id)
                return found if found[0] in {"completed", "failed"} else None

            status, total, valid, invalid, error_rows, blank_errors = wait_until(
                f"batch {batch_id}", finished, BATCH_TIMEOUT, poll=0.05
            )
            assert (status, total) == ("completed", generated.data_rows)
            assert valid + invalid == total
            assert error_rows == invalid  # every invalid row has at least one error, with a code
            assert blank_errors == 0
            stored = db_conn.execute(
                "SELECT lower(case_number), plaintiff, defendant FROM public.judgments"
                " WHERE source_batch_id = %s",
                (batch_id,),
            ).fetchall()
            assert {tuple(row) for row in stored} <= generated.records
            assert worker.process.poll() is None, worker.stderr()[-3000:]

        check()

    assert seen["accepted"] >= 1
    assert "Traceback" not in worker.stderr(), worker.stderr()[-3000:]


def upload(client: httpx.Client, content: bytes) -> httpx.Response:
    return client.post(
        "/api/v1/intake/upload",
        params={"force": "true"},
        files={"file": ("hostile.csv", content, "text/csv")},
    )
