"""One trace per request on a keep-alive connection, after a body bigger than the read chunk.

uvicorn pauses reading a connection once it holds 64 KiB of a body and resumes it from inside
the request's receive(); asyncio's reader then keeps that request's context (the server span
OpenTelemetry attached), and the next request's task is made from it: every later request on
the connection became a child of the first upload's trace, its traceparent ignored.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import psycopg

from harness.stack.processes import ReferenceStack
from harness.telemetry.collector import CollectedSpan, OtlpCollector
from harness.telemetry.span_query import SpanQuery

UPLOAD = "/api/v1/intake/upload"
HEADER = b"Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
BIG_ROWS = 4000  # about 200 KiB: three times uvicorn's 64 KiB read limit
SENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{SENT_TRACE}-00f067aa0ba902b7-01"
SOCKET_TIMEOUT = 30.0
API_SERVICE = "dragonfly-api"


def upload_request(key: str, content: bytes, extra_headers: str = "") -> bytes:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="t.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + content + b"\r\n--b--\r\n"
    )
    return (
        f"POST {UPLOAD}?force=true HTTP/1.1\r\nHost: t\r\nX-DRAGONFLY-API-KEY: {key}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n"
        f"{extra_headers}\r\n"
    ).encode() + body


def read_response(sock: socket.socket) -> dict[str, Any]:
    """One response (Content-Length framed) from a keep-alive connection: its JSON body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 202"), head + body
    parsed: dict[str, Any] = json.loads(body[:length])
    return parsed


def rows(prefix: str, count: int) -> bytes:
    return HEADER + b"".join(
        f"{prefix}-{index},Acme Funding LLC,John Doe,12.50,01/15/2024,Kings\r\n".encode()
        for index in range(count)
    )


def job_trace_id(conn: psycopg.Connection[Any], job_id: str) -> str:
    row = conn.execute(
        "SELECT trace_context->>'traceparent' FROM ops.job_queue WHERE id = %s", (job_id,)
    ).fetchone()
    assert row is not None, job_id
    assert row[0], job_id
    return str(row[0]).split("-")[1]


def test_each_request_on_a_kept_alive_connection_has_its_own_trace(
    reference_stack: ReferenceStack,
    otel_collector: OtlpCollector,
    db_conn: psycopg.Connection[Any],
) -> None:
    reference_stack.extra_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otel_collector.endpoint
    reference_stack.extra_env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    reference_stack.start_api()
    key = reference_stack.api_key
    with socket.create_connection(("127.0.0.1", reference_stack.api_port), SOCKET_TIMEOUT) as sock:
        sock.sendall(upload_request(key, rows("BIG", BIG_ROWS)))
        jobs = [read_response(sock)["job_id"]]
        for index in range(3):
            sock.sendall(upload_request(key, rows(f"SMALL{index}", 1)))
            jobs.append(read_response(sock)["job_id"])
        sock.sendall(upload_request(key, rows("SENT", 1), f"traceparent: {TRACEPARENT}\r\n"))
        jobs.append(read_response(sock)["job_id"])

    traces = [job_trace_id(db_conn, job_id) for job_id in jobs]

    assert len(set(traces)) == len(traces), traces  # before the fix: one trace for all
    assert traces[-1] == SENT_TRACE

    def server_spans(spans: list[CollectedSpan]) -> list[CollectedSpan]:
        return SpanQuery(spans).find(service=API_SERVICE, name=f"POST {UPLOAD}", kind="SERVER")

    spans = SpanQuery(
        otel_collector.wait_for_spans(lambda found: len(server_spans(found)) >= len(jobs))
    )
    server = server_spans(spans.spans)
    assert sorted(s.trace_id for s in server) == sorted(traces)
    sent = next(s for s in server if s.trace_id == SENT_TRACE)
    assert sent.parent_span_id == "00f067aa0ba902b7"
    # No request is a span inside another's trace: one server span per trace, none internal.
    for request in server:
        posts = [s for s in spans.trace_of(request).spans if s.name.startswith("POST ")]
        assert posts == [request], posts
