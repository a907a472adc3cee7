"""What a handler gets besides its job, and the handler signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from reference.config import Settings
from reference.jobqueue import Job, QueueClient


@dataclass
class JobContext:
    """A handler's view of its worker.

    `conn` is autocommit: a handler groups its writes with `with conn.transaction():`, and
    enqueues follow-up jobs through `queue` (inside that transaction when they must commit
    together).
    """

    conn: psycopg.Connection[Any]
    queue: QueueClient
    worker_id: str
    settings: Settings


Handler = Callable[[Job, JobContext], None]
