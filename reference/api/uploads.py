"""Read the `file` part of a multipart upload, bounded, check that it is a usable CSV, store it.

`store_upload` is the one writer of an upload (batch, bytes, ingest_csv job): the API calls it,
and so do the harness and the tests that need a stored file without HTTP.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from reference.api.errors import ApiError
from reference.api.schemas import UploadAccepted
from reference.api.sniff import (
    check_file_kind,
    check_unicode_bom,
    separator_error,
    wrong_separator,
)
from reference.api.sql import execute, fetch_one
from reference.jobqueue import JobType, QueueClient
from reference.simplicity import HeaderError, map_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FORM_OVERHEAD = 64 * 1024  # bytes of multipart framing and other fields allowed beyond the file
CSV_CONTENT_TYPES = frozenset(
    {"text/csv", "application/vnd.ms-excel", "text/plain", "application/octet-stream"}
)
FIELD = "file"
MAX_FILENAME_CHARACTERS = 255  # what file systems and the batch listing take
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOW_TO_SEND = "send the CSV as multipart/form-data in a field named file, e.g. curl -F file=@x.csv"


@dataclass
class Upload:
    """The file part: its name, declared type and bytes."""

    filename: str = ""
    content_type: str = ""
    content: bytearray = field(default_factory=bytearray)


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the file is larger than the upload limit of {limit} bytes: split it into smaller "
        "files (each with the header row), or raise MAX_UPLOAD_BYTES on the server",
    )


def incomplete_upload(why: str) -> ApiError:
    return ApiError(
        400,
        "incomplete_upload",
        f"the upload was cut off ({why}): nothing was stored; send it again, whole",
    )


def _check_is_csv(upload: Upload) -> None:
    kind = upload.content_type.split(";", 1)[0].strip().lower() or "text/plain"
    if upload.filename.lower().endswith(".csv") and kind in CSV_CONTENT_TYPES:
        return
    name = repr(upload.filename) if upload.filename else "the file (sent without a filename)"
    raise ApiError(
        415,
        "not_csv",
        f"{name} (content type {kind}) is not a CSV file: upload a .csv file with content type "
        "text/csv, e.g. the Simplicity export saved as CSV",
    )


class _FormReader:
    """python-multipart callbacks that keep the first `file` part and drop other fields."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.upload: Upload | None = None
        self._headers: dict[bytes, bytes] = {}
        self._name, self._value = b"", b""
        self._in_file = False
        self.ended = False  # the closing boundary arrived

    def on_end(self) -> None:
        self.ended = True

    def on_part_begin(self) -> None:
        self._headers, self._in_file = {}, False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.strip().lower()] = self._value.strip()
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") != FIELD.encode():
            return
        if self.upload is not None:
            raise ApiError(
                400, "multiple_files", f"the form has more than one file field: {_HOW_TO_SEND}"
            )
        raw_name = options.get(b"filename", b"").decode("utf-8", "replace")
        segments = raw_name.replace("\\", "/").split("/")
        if ".." in segments:
            # Folders are dropped (old browsers send C:\...\x.csv); a climb is an attack.
            raise ApiError(
                400,
                "invalid_filename",
                "the file name climbs out of its folder ('..'): send the file's own name, "
                "e.g. judgments.csv",
            )
        name = _CONTROL.sub("", segments[-1])
        if len(name) > MAX_FILENAME_CHARACTERS:
            raise ApiError(
                400,
                "filename_too_long",
                f"the file name has {len(name)} characters, more than the limit of "
                f"{MAX_FILENAME_CHARACTERS}: rename the file to something shorter, e.g. "
                "judgments-2024-01.csv",
            )
        content_type = self._headers.get(b"content-type", b"").decode("latin-1")
        self.upload = Upload(filename=name, content_type=content_type)
        self._in_file = True
        _check_is_csv(self.upload)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self.upload is not None:
            if len(self.upload.content) + end - start > self.limit:
                raise too_large(self.limit)
            self.upload.content += data[start:end]

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_end": self.on_end,
        }


async def read_upload(request: Request, limit: int) -> Upload:
    """Stream the request body into the `file` part; stop at the first problem."""
    kind, options = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(
            415, "not_multipart", f"the request is not multipart/form-data: {_HOW_TO_SEND}"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise too_large(limit)
    reader = _FormReader(limit)
    boundary = options[b"boundary"].decode("latin-1")
    parser = MultipartParser(options[b"boundary"], reader.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + FORM_OVERHEAD:
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:
        # The body ended before its Content-Length (the client or a proxy closed): no one hears
        # this answer, but the upload is refused, never stored.
        raise incomplete_upload("the connection closed before the whole body arrived") from None
    except MultipartParseError:
        raise ApiError(
            400, "malformed_multipart", f"the multipart body is malformed: {_HOW_TO_SEND}"
        ) from None
    if not reader.ended:
        # No closing boundary: the body stops mid-part (e.g. mid-row). Stored, its last row would
        # pass for a whole one ("...,1000000" cut to "...,10").
        raise incomplete_upload(f"the body ends without its closing boundary --{boundary}--")
    if reader.upload is None:
        raise ApiError(400, "missing_file", f"the form has no field named file: {_HOW_TO_SEND}")
    return reader.upload


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8").removeprefix("\ufeff")  # a UTF-8 BOM is fine
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise ApiError(
            400,
            "not_utf8",
            f"the file is not UTF-8: byte 0x{content[error.start]:02x} at offset {error.start} "
            f"(line {line}) is not valid UTF-8; save the file as 'CSV UTF-8' and upload it again",
        ) from None


def check_csv(content: bytes) -> None:
    """Raise the ApiError for an empty, non-UTF-8 or header-less CSV; return if it is usable.

    The bytes are sniffed first (compressed, archive, PDF, Excel, UTF-16/32), so each of those
    gets its own code instead of an answer about one of its bytes.
    """
    check_file_kind(content)
    check_unicode_bom(content)
    if not content.removeprefix(codecs.BOM_UTF8).strip():
        raise ApiError(400, "empty_file", "the file is empty: upload a CSV with a header row")
    text = _decode(content)
    # newline="": lines end at \r\n, \n or a lone \r, as in the Ingest Processor (old Excel for
    # Mac ends lines with \r alone; without this the header was "malformed_csv").
    records = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        # Like the Ingest Processor: the header is the first row that is not blank.
        header = next((row for row in records if any(field.strip() for field in row)), [])
    except csv.Error as error:
        raise ApiError(
            400, "malformed_csv", f"the header row cannot be read as CSV ({error})"
        ) from None
    try:
        map_header(header)
    except HeaderError as error:
        header_line = next((line for line in text.splitlines() if line.strip()), "")
        separator = wrong_separator(header_line)
        if separator is not None:
            raise separator_error(separator) from None
        raise ApiError(400, error.code, f"the header row is not usable: {error}") from None


def _queue_ingest(conn: psycopg.Connection[Any], batch_id: UUID, sha256: str, force: bool) -> UUID:
    queue = QueueClient(conn)
    payload = {"batch_id": str(batch_id)}
    own_key = f"{sha256}:{batch_id}"
    job_id = queue.queue_job(
        JobType.INGEST_CSV, payload, idempotency_key=own_key if force else sha256
    )
    if not force:
        job = queue.get_job(job_id)
        if job is None or job.payload != payload:
            # A job for these bytes outlived its batch (deleted by hand): this batch needs its own.
            job_id = queue.queue_job(JobType.INGEST_CSV, payload, idempotency_key=own_key)
    return job_id


def store_upload(
    conn: psycopg.Connection[Any], filename: str, content: bytes, *, force: bool
) -> UploadAccepted:
    """Store batch, bytes and ingest_csv job at once; a 409 for known bytes unless `force`."""
    sha256 = hashlib.sha256(content).hexdigest()
    params = {"sha256": sha256, "filename": filename, "size_bytes": len(content)}
    with conn.transaction():
        # Two uploads of the same new bytes: the second waits here, then sees the first.
        execute(conn, "lock_file_sha256", params)
        existing = fetch_one(conn, "find_batch_by_sha256", params)
        if existing is not None and not force:
            raise ApiError(
                409,
                "duplicate_file",
                f"this file (sha256 {sha256}) was already uploaded as batch {existing['id']} "
                f"(status {existing['status']}); follow it at /api/v1/intake/batches/"
                f"{existing['id']}, or upload again with ?force=true to ingest it again",
            )
        batch = fetch_one(conn, "insert_batch", params)
        assert batch is not None  # INSERT ... RETURNING always returns the row
        batch_id: UUID = batch["id"]
        execute(conn, "insert_upload", {"batch_id": batch_id, "content": content})
        job_id = _queue_ingest(conn, batch_id, sha256, force)
        execute(conn, "set_batch_job", {"batch_id": batch_id, "job_id": job_id})
    return UploadAccepted(
        batch_id=batch_id, job_id=job_id, filename=filename, size_bytes=len(content), sha256=sha256
    )
