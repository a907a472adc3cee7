"""Formula-like cells (=, +, -, @ first) are data: stored as received, never evaluated or cut.

No endpoint hands rows back as CSV today; the guard below fails when one is added, so its
author neutralises such cells there (prefix ') in the same change.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import psycopg

from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until

SPEC = json.loads((Path(__file__).parents[1] / "contract" / "openapi.json").read_text())
ROWS = [
    ["=CV-1", "=HYPERLINK(\"http://evil.example\",\"x\")", "+SUM(A1:A9)", "12.50", "01/15/2024",
     "@cmd"],
    ["-CV-2", "=cmd|' /C calc'!A0", "-2+3", "$1,000.00", "2024-02-29", "+Kings"],
]  # fmt: skip
HEADER = ["Case Number", "Plaintiff", "Defendant", "Judgment Amount", "Filing Date", "County"]


def formula_csv() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([HEADER, *ROWS])
    return buffer.getvalue().encode()


def test_formula_like_cells_are_stored_exactly_as_received(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        accepted = client.post(
            "/api/v1/intake/upload", files={"file": ("formulas.csv", formula_csv(), "text/csv")}
        )
        assert accepted.status_code == 202, accepted.text
        batch_url = f"/api/v1/intake/batches/{accepted.json()['batch_id']}"

        def completed() -> dict[str, Any] | None:
            batch: dict[str, Any] = client.get(batch_url).json()
            return batch if batch["status"] == "completed" else None

        batch = wait_until("the formula batch", completed, 30.0, poll=0.1)

    assert (batch["valid_rows"], batch["invalid_rows"]) == (2, 0), batch
    stored = db_conn.execute(
        "SELECT case_number, plaintiff, defendant, county FROM public.judgments ORDER BY 1"
    ).fetchall()
    assert sorted(stored) == sorted((row[0], row[1], row[2], row[5]) for row in ROWS)


def test_no_endpoint_hands_rows_back_as_csv_without_neutralising_them() -> None:
    served_types = {
        media
        for operations in SPEC["paths"].values()
        for operation in operations.values()
        for response in operation["responses"].values()
        for media in response.get("content", {})
    }

    assert served_types == {"application/json"}, (
        "an endpoint now answers with a non-JSON type: if it hands rows back as CSV, prefix "
        "cells starting with = + - @ (or tab/CR) with ' there, and test it here"
    )
