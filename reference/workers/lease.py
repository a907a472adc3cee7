"""Keep a long job's lease fresh from a side thread while its handler runs."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from uuid import UUID

import psycopg

from reference.jobqueue import QueueClient, QueueError

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Calls extend_lock every `interval` seconds on its own connection until closed."""

    def __init__(self, conninfo: str, job_id: UUID, worker_id: str, interval: float) -> None:
        self.conninfo = conninfo
        self.job_id = job_id
        self.worker_id = worker_id
        self.interval = interval
        self.lost = threading.Event()
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

    def _run(self) -> None:
        conn: psycopg.Connection[object] | None = None
        try:
            while not self._done.wait(self.interval):
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                    if not QueueClient(conn).extend_lock(self.job_id, self.worker_id):
                        logger.warning("extend_lock: lease on job %s was lost", self.job_id)
                        self.lost.set()
                        return
                except (QueueError, psycopg.Error) as error:
                    # The main loop sees the outage too; the next tick tries again.
                    logger.warning("extend_lock failed for job %s: %s", self.job_id, error)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()
