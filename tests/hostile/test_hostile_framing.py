"""Hypothesis-generated multipart framing and file kinds, over raw sockets to the real API.

Each example is a whole upload mutated the ways clients and proxies break them: cut anywhere,
closing boundary missing, the file part twice, the boundary misspelt, a Content-Length shorter
or longer than the body; and file kinds: separators, encodings, compressed and binary files.
The property: every input is either refused with a named 4xx and nothing stored, or accepted
(202) with the stored bytes equal to the file that was sent, whole.
DRAGONFLY_HOSTILE_FRAMING_EXAMPLES sets the number of examples (default 80).
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack.processes import ReferenceStack

EXAMPLES = int(os.environ.get("DRAGONFLY_HOSTILE_FRAMING_EXAMPLES", "80"))
UPLOAD = "/api/v1/intake/upload"
BOUNDARY = "fz0boundary"
SOCKET_TIMEOUT = 15.0
HEADER = ["Case Number", "Plaintiff", "Defendant", "Judgment Amount", "Filing Date", "County"]
ROWS = [
    ["KGS-2024-001", "Acme Funding LLC", "John Doe", "1000000", "01/15/2024", "Kings"],
    ["kgs-2024-002", "Midland; Funding", "Roe | Jane", "$1,234.56", "2024-02-29", "Queens"],
]
# Codes a refusal may carry: each names its defect (never a 5xx, never a generic one).
NAMED_REFUSALS = {
    "incomplete_upload",
    "malformed_multipart",
    "missing_file",
    "multiple_files",
    "not_multipart",
    "wrong_separator",
    "utf16_file",
    "utf32_file",
    "not_utf8",
    "compressed_file",
    "zip_file",
    "excel_file",
    "pdf_file",
    "empty_file",
    "missing_columns",
    "malformed_csv",
    "duplicate_file",
}


@dataclass(frozen=True)
class Framed:
    content: bytes  # the file as the client meant it
    request: bytes  # what goes on the wire
    half_close: bool  # the client ends its side after sending (a body shorter than declared)


def file_part(content: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + content


@st.composite
def file_kinds(draw: st.DrawFn) -> bytes:
    """CSV in a separator and an encoding, or a compressed or binary file, or a repeated header."""
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    rows = [HEADER, *draw(st.lists(st.sampled_from(ROWS), min_size=0, max_size=3))]
    if draw(st.booleans()):
        rows.append(HEADER)  # two exports pasted: a row error, not a refusal
    text = ending.join(
        separator.join(f'"{cell}"' if separator in cell else cell for cell in row) for row in rows
    ) + draw(st.sampled_from([ending, ""]))
    kind = draw(
        st.sampled_from(
            ["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32", "gzip", "bz2", "pdf", "binary"]
        )
    )
    match kind:
        case "gzip":
            return gzip.compress(text.encode())
        case "bz2":
            return bz2.compress(text.encode())
        case "pdf":
            return b"%PDF-1.4\n" + text.encode()
        case "binary":
            return draw(st.binary(min_size=1, max_size=64))
        case _:
            return text.encode(kind)


@st.composite
def framings(draw: st.DrawFn) -> Framed:
    content = draw(file_kinds())
    body = file_part(content) + f"\r\n--{BOUNDARY}--\r\n".encode()
    declared: int | None = None
    half_close = False
    match draw(
        st.sampled_from(["whole", "cut", "no-closing", "twice", "misspelt", "short", "long"])
    ):
        case "cut":
            body = body[: draw(st.integers(0, len(body)))]
        case "no-closing":
            body = file_part(content)
        case "twice":
            body = file_part(content) + b"\r\n" + body
        case "misspelt":
            body = body.replace(f"--{BOUNDARY}--".encode(), b"--fz1boundary--")
        case "short":  # the server reads only `declared` bytes: the rest is a broken next request
            declared = draw(st.integers(0, len(body)))
        case "long":
            declared = len(body) + draw(st.integers(1, 100))
            half_close = True
    head = (
        f"POST {UPLOAD}?force=true HTTP/1.1\r\nHost: t\r\nX-DRAGONFLY-API-KEY: {{key}}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nConnection: close\r\n"
        f"Content-Length: {len(body) if declared is None else declared}\r\n\r\n"
    )
    return Framed(content, head.encode() + body, half_close)


def exchange(port: int, request: bytes, half_close: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), SOCKET_TIMEOUT) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole request
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def uploads(conn: psycopg.Connection[Any]) -> list[bytes]:
    return [
        bytes(row[0])
        for row in conn.execute(
            "SELECT content FROM ops.ingest_uploads ORDER BY stored_at, batch_id"
        )
    ]


@pytest.mark.slow
def test_every_framing_is_refused_by_name_or_stored_whole(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.start_api()
    port, key = reference_stack.api_port, reference_stack.api_key
    seen = {"accepted": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(framed=framings())
    def check(framed: Framed) -> None:
        before = uploads(db_conn)
        request = framed.request.replace(b"{key}", key.encode(), 1)

        reply = exchange(port, request, framed.half_close)

        after = uploads(db_conn)
        status = int(reply[9:12]) if reply.startswith(b"HTTP/1.1 ") else None
        assert status is None or status < 500, reply[:500]
        if status == 202:
            seen["accepted"] += 1
            assert after == [*before, framed.content]  # stored whole, byte for byte
            return
        seen["refused"] += 1
        assert after == before  # nothing stored
        if status is not None and reply.endswith(b"}"):
            code = json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["code"]
            assert code in NAMED_REFUSALS, reply[:500]
            assert 400 <= status < 500

    check()
    assert seen["accepted"] >= 1
    assert seen["refused"] >= 1
