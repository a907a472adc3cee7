"""Uploads cut off, slow or oddly named, over raw sockets to the API started as a process.

A client that dies mid-upload or a proxy that cuts the body sends a multipart body without its
closing boundary, or shorter than its Content-Length: it must be refused as incomplete, with
nothing stored and no job queued, never stored as if whole. A connection that sends its head
slowly is closed by the server; a file name over 255 characters is refused naming the limit.
"""

from __future__ import annotations

import socket
from typing import Any

import psycopg
import pytest

from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until

UPLOAD = "/api/v1/intake/upload"
HEADER = b"Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
WHOLE = HEADER + b"KGS-2024-001,Acme Funding LLC,John Doe,1000000,01/15/2024,Kings\r\n"
CUT = WHOLE[: WHOLE.index(b"1000000") + 2]  # "...,Kings,10" in the issue: here the amount
BOUNDARY = "cutboundary"
SOCKET_TIMEOUT = 15.0  # seconds a raw-socket exchange may take
HEADER_TIMEOUT = 1.0  # API_HEADER_TIMEOUT of the started API (seconds)


def part(content: bytes, filename: str = "judgments.csv") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + content


def closed(body: bytes) -> bytes:
    return body + f"\r\n--{BOUNDARY}--\r\n".encode()


def head(stack: ReferenceStack, length: int) -> bytes:
    return (
        f"POST {UPLOAD}?force=true HTTP/1.1\r\nHost: t\r\nX-DRAGONFLY-API-KEY: {stack.api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def send(stack: ReferenceStack, data: bytes, *, half_close: bool = False) -> bytes:
    """Send `data` on a new connection (then end the sending side if asked); the reply bytes."""
    with socket.create_connection(("127.0.0.1", stack.api_port), SOCKET_TIMEOUT) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received or not _whole(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _whole(response: bytes) -> bool:
    head_bytes, _, body = response.partition(b"\r\n\r\n")
    for line in head_bytes.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def stored(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM ops.ingest_batches), (SELECT count(*) FROM ops.job_queue)"
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def api(reference_stack: ReferenceStack) -> ReferenceStack:
    reference_stack.extra_env["API_HEADER_TIMEOUT"] = str(HEADER_TIMEOUT)
    reference_stack.start_api()
    return reference_stack


def test_a_body_without_its_closing_boundary_is_refused_as_incomplete(
    api: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    body = part(CUT)  # the client died mid-row: no closing boundary

    reply = send(api, head(api, len(body)) + body)

    assert reply.startswith(b"HTTP/1.1 400"), reply[:400]
    assert b'"incomplete_upload"' in reply, reply
    assert b"cut off" in reply, reply
    assert b"send it again" in reply, reply
    assert stored(db_conn) == (0, 0)


def test_a_content_length_shorter_than_the_body_cuts_it_and_is_refused(
    api: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    body = closed(part(WHOLE))
    cut_at = len(part(CUT))  # the server reads this many bytes as the body: cut mid-row

    reply = send(api, head(api, cut_at) + body[:cut_at])

    assert reply.startswith(b"HTTP/1.1 400"), reply[:400]
    assert b'"incomplete_upload"' in reply, reply
    assert stored(db_conn) == (0, 0)


def test_a_body_shorter_than_its_content_length_stores_nothing(
    api: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    body = closed(part(WHOLE))

    # The client declares more than it sends, then ends its side: the server never gets it all.
    send(api, head(api, len(body) + 100) + body, half_close=True)
    # A whole upload after it: once it is stored, the cut one has long been handled.
    whole = closed(part(WHOLE))
    reply = send(api, head(api, len(whole)) + whole)

    assert reply.startswith(b"HTTP/1.1 202"), reply[:400]
    assert stored(db_conn) == (1, 1)  # the whole one only


@pytest.mark.parametrize("ending", [b"\r\n", b"", b"\n"])
def test_a_whole_file_passes_with_or_without_a_final_newline(
    api: ReferenceStack, db_conn: psycopg.Connection[Any], ending: bytes
) -> None:
    body = closed(part(WHOLE.rstrip(b"\r\n") + ending))

    reply = send(api, head(api, len(body)) + body)

    assert reply.startswith(b"HTTP/1.1 202"), reply[:400]
    assert stored(db_conn) == (1, 1)


def test_a_file_name_over_255_characters_is_refused_naming_the_limit(
    api: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    body = closed(part(WHOLE, filename="j" * 300 + ".csv"))

    reply = send(api, head(api, len(body)) + body)

    assert reply.startswith(b"HTTP/1.1 400"), reply[:400]
    assert b'"filename_too_long"' in reply, reply
    assert b"255" in reply, reply
    assert stored(db_conn) == (0, 0)


def test_a_connection_that_sends_its_head_slowly_is_closed_by_the_server(
    api: ReferenceStack,
) -> None:
    with socket.create_connection(("127.0.0.1", api.api_port), SOCKET_TIMEOUT) as sock:
        sock.sendall(b"POST /api/v1/intake/upload HTTP/1.1\r\nHost: t\r\n")

        def server_answered_or_closed() -> bytes | None:
            # One header line a second would keep any idle timer at bay; the head never ends.
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return b"(closed)"
            sock.settimeout(0.5)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return None
            return data or b"(closed)"

        # The deadline is the check: a server without a header timeout never answers.
        reply = wait_until(
            "the server to give up on the head", server_answered_or_closed, 10 * HEADER_TIMEOUT
        )

    assert reply == b"(closed)" or reply.startswith(b"HTTP/1.1 408"), reply[:300]
