"""What a handler gets besides its job, the handler signature, and the errors it may raise."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from reference.config import Settings
from reference.jobqueue import Job, QueueClient


class PermanentJobError(Exception):
    """No retry can help this job (e.g. what it names is gone): it is dead-lettered at once."""


class LeaseLostError(Exception):
    """Another worker holds this job now: stop, and leave its effects uncommitted."""


@dataclass
class JobContext:
    """A handler's view of its worker.

    `conn` is autocommit: a handler groups its writes with `with conn.transaction():`, and
    enqueues follow-up jobs through `queue` (inside that transaction when they must commit
    together). A long handler calls `check_lease()` before it commits: once the lease is lost
    (the reaper gave the job to another worker), that raises LeaseLostError.
    """

    conn: psycopg.Connection[Any]
    queue: QueueClient
    worker_id: str
    settings: Settings
    lease: threading.Event = field(default_factory=threading.Event)  # set when the lease is lost

    def lease_lost(self) -> bool:
        """True once this worker no longer holds the job."""
        return self.lease.is_set()

    def check_lease(self) -> None:
        """Raise LeaseLostError once this worker no longer holds the job."""
        if self.lease.is_set():
            raise LeaseLostError("the lease on this job was lost: another worker holds it now")


Handler = Callable[[Job, JobContext], None]
