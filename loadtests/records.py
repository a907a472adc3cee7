"""What one load process saw: every claim and every timed queue operation, flushed with COPY.

Locust buckets response times to whole milliseconds (and coarser above 100 ms), so a claim of
0.4 ms reads as 0 ms there. Each operation's exact duration is kept here instead, and the run's
percentiles are computed over all processes' records in SQL (`operation_latency`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from loadtests.sql import query


@dataclass(frozen=True)
class ClaimRecord:
    job_id: UUID
    worker_id: str
    attempts: int
    locked_at: datetime
    completed: bool


@dataclass(frozen=True)
class OperationRecord:
    name: str
    duration_us: int
    jobs: int
    ok: bool


@dataclass
class Recorder:
    """Claims and operations of one process for one run; `flush` writes and forgets them."""

    run_id: str
    claims: list[ClaimRecord] = field(default_factory=list)
    operations: list[OperationRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, record: ClaimRecord) -> None:
        with self.lock:
            self.claims.append(record)

    def operation(self, name: str, seconds: float, jobs: int, ok: bool) -> None:
        with self.lock:
            self.operations.append(OperationRecord(name, round(seconds * 1e6), jobs, ok))

    def flush(self, conn: psycopg.Connection[Any]) -> tuple[int, int]:
        """COPY everything recorded so far into dragonfly_load.*; (claims, operations) written."""
        with self.lock:
            claims, self.claims = self.claims, []
            operations, self.operations = self.operations, []
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(query("copy_claims")) as copy:
                for c in claims:
                    copy.write_row(
                        (self.run_id, c.job_id, c.worker_id, c.attempts, c.locked_at, c.completed)
                    )
            with cursor.copy(query("copy_operations")) as copy:
                for o in operations:
                    copy.write_row((self.run_id, o.name, o.duration_us, o.jobs, o.ok))
        return len(claims), len(operations)
