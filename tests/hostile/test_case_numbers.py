"""Case numbers are one identifier however typed; a header pasted mid-file is named.

Through the API and the Ingest Processor as real processes: `kgs-2024-001`, `KGS-2024-001` and
` Kgs-2024-001 ` are one judgment (keyed trimmed and lower-cased, shown as first stored), a
later upload in another spelling updates it, and a repeated header row is a `repeated_header`
row error of its own, not a bad data row.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until

HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"


def ingest(client: httpx.Client, text: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/intake/upload",
        params={"force": "true"},
        files={"file": ("cases.csv", text.encode(), "text/csv")},
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]

    def finished() -> dict[str, Any] | None:
        batch: dict[str, Any] = client.get(f"/api/v1/intake/batches/{batch_id}").json()
        return batch if batch["status"] in {"completed", "failed"} else None

    batch = wait_until(f"batch {batch_id}", finished, 60.0)
    errors = client.get(f"/api/v1/intake/batches/{batch_id}/errors").json()["errors"]
    return {**batch, "errors": [(e["row_number"], e["error_code"]) for e in errors]}


def judgments(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in conn.execute(
            "SELECT case_number, judgment_amount::text FROM public.judgments ORDER BY 1"
        )
    ]


def test_one_case_in_three_spellings_is_one_judgment_and_a_later_spelling_updates_it(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        first = ingest(
            client,
            HEADER
            + "kgs-2024-001,Acme,John Doe,100,01/15/2024,Kings\r\n"
            + "KGS-2024-001,Acme,John Doe,200,01/15/2024,Kings\r\n"
            + '" Kgs-2024-001 ",Acme,John Doe,300,01/15/2024,Kings\r\n',
        )
        assert (first["status"], first["total_rows"], first["valid_rows"]) == ("completed", 3, 1)
        assert first["errors"] == [(3, "duplicate_case_number"), (4, "duplicate_case_number")]
        assert judgments(db_conn) == [("kgs-2024-001", "100.00")]

        second = ingest(client, HEADER + "  KGS-2024-001  ,Acme,John Doe,999,01/15/2024,Kings\r\n")

        assert (second["status"], second["valid_rows"]) == ("completed", 1)
        assert judgments(db_conn) == [("kgs-2024-001", "999.00")]  # first spelling, new amount

        # Its judgment deleted by hand, the key is stale: the next upload re-points it.
        db_conn.execute("DELETE FROM public.judgments")
        third = ingest(client, HEADER + "Kgs-2024-001,Acme,John Doe,5,01/15/2024,Kings\r\n")

        assert (third["status"], third["valid_rows"]) == ("completed", 1)
        assert judgments(db_conn) == [("Kgs-2024-001", "5.00")]
        keys = db_conn.execute(
            "SELECT k.case_key, j.case_number FROM public.judgment_case_keys AS k"
            " JOIN public.judgments AS j ON j.id = k.judgment_id"
        ).fetchall()
        assert keys == [("kgs-2024-001", "Kgs-2024-001")]


def test_a_header_row_repeated_mid_file_is_a_row_error_of_its_own(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        batch = ingest(
            client,
            HEADER
            + "CV-1,Acme,John Doe,100,01/15/2024,Kings\r\n"
            + HEADER  # two exports pasted together
            + "CV-2,Acme,Jane Roe,200,01/16/2024,Kings\r\n"
            + "case no,creditor,debtor,amount,filed\r\n",  # another export's header, fewer columns
        )

    assert (batch["status"], batch["total_rows"], batch["valid_rows"]) == ("completed", 4, 2)
    assert batch["errors"] == [(3, "repeated_header"), (5, "repeated_header")]
    assert judgments(db_conn) == [("CV-1", "100.00"), ("CV-2", "200.00")]
