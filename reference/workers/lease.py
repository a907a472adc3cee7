"""While a handler runs, a side thread keeps its job's lease fresh and its worker's heartbeat."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any
from uuid import UUID

import psycopg

from reference.jobqueue import QueueClient, QueueError

CONNECT_TIMEOUT = 5  # seconds for the side connection

logger = logging.getLogger(__name__)

Heartbeat = Callable[[QueueClient], None]


class LeaseKeeper:
    """On its own connection: extend_lock every `extend_interval` s, `heartbeat` every
    `heartbeat_interval` s, until closed. `lost` is set (and extension stops) once the lease is
    gone; the heartbeat goes on, since the worker itself is alive. Past `deadline` (the job's
    time limit, in time.monotonic() seconds) the lease is no longer extended: a job stuck past
    its limit where the database cannot cancel it is left to the reaper."""

    def __init__(
        self,
        conninfo: str,
        job_id: UUID,
        worker_id: str,
        *,
        extend_interval: float,
        heartbeat: Heartbeat,
        heartbeat_interval: float,
        lost: threading.Event | None = None,
        deadline: float = float("inf"),
        connect_kwargs: dict[str, Any] | None = None,
        lock_timeout: timedelta | None = None,
    ) -> None:
        self.conninfo = conninfo
        # e.g. no prepared statements behind a transaction pooler (Settings.database_connect_kwargs)
        self.connect_kwargs = connect_kwargs or {}
        self.job_id = job_id
        self.worker_id = worker_id
        self.extend_interval = extend_interval
        self.heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval
        self.lost = lost if lost is not None else threading.Event()
        self.deadline = deadline
        self.lock_timeout = lock_timeout  # each extension leases this long (None: the default)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _tick(self, queue: QueueClient, now: float, due: dict[str, float]) -> None:
        if now >= due["heartbeat"]:
            self.heartbeat(queue)
            due["heartbeat"] = now + self.heartbeat_interval
        if now >= due["extend"] and not self.lost.is_set():
            if now >= self.deadline:
                logger.warning(
                    "job %s is over its time limit: its lease is no longer extended", self.job_id
                )
                due["extend"] = float("inf")
                return
            if not queue.extend_lock(self.job_id, self.worker_id, lock_timeout=self.lock_timeout):
                logger.warning("extend_lock: lease on job %s was lost", self.job_id)
                self.lost.set()
            due["extend"] = float("inf") if self.lost.is_set() else now + self.extend_interval

    def _run(self) -> None:
        started = time.monotonic()
        due = {"heartbeat": started + self.heartbeat_interval, "extend": started}
        due["extend"] += self.extend_interval
        conn: psycopg.Connection[object] | None = None
        try:
            while not self._done.wait(max(0.0, min(due.values()) - time.monotonic())):
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(
                            self.conninfo,
                            autocommit=True,
                            connect_timeout=CONNECT_TIMEOUT,
                            **self.connect_kwargs,
                        )
                    self._tick(QueueClient(conn), time.monotonic(), due)
                except (QueueError, psycopg.Error) as error:
                    # The main loop sees the outage too; retry at the next interval.
                    logger.warning("lease keeper for job %s: %s", self.job_id, error)
                    if conn is not None:
                        conn.close()
                    conn = None
                    now = time.monotonic()
                    due = {key: max(value, now + 0.5) for key, value in due.items()}
        finally:
            if conn is not None:
                conn.close()
