"""Who blocks a migration: polled on a second connection while the migration waits for a lock.

Once a lock wait ends (the lock timeout fired), pg_blocking_pids no longer names anyone, so the
blockers are sampled while the migration runs and the last sample is what its error reports.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row

from reference.db.sql import query

POLL_INTERVAL = 0.05  # seconds between two samples of pg_blocking_pids
FIRST_SAMPLE_AFTER = 0.1  # seconds: a migration done by then never opens the watch's connection


@dataclass(frozen=True)
class Blocker:
    """A session holding a lock the migration waited for."""

    pid: int
    state: str
    username: str
    xact_seconds: float
    query: str

    def describe(self) -> str:
        return (
            f"pid {self.pid} (user {self.username or '?'}, {self.state or 'unknown state'}, "
            f"transaction open {self.xact_seconds:.0f} s) running: {self.query or '?'}"
        )


@dataclass
class BlockerSample:
    """The last non-empty list of blockers seen (empty when the migration never waited)."""

    blockers: list[Blocker] = field(default_factory=list)

    def describe(self) -> str:
        if not self.blockers:
            return "the blocking session was not seen (it ended, or held the lock only briefly)"
        return "blocked by " + "; ".join(blocker.describe() for blocker in self.blockers)


@contextmanager
def watch_blockers(
    conninfo: str, pid: int, first_sample_after: float = FIRST_SAMPLE_AFTER
) -> Iterator[BlockerSample]:
    """Sample the sessions blocking backend `pid` until the block ends.

    Sampling starts after `first_sample_after` seconds (less than the lock timeout, so a wait
    that times out is seen), so the quick migrations of a fresh database cost no connection.
    """
    sample = BlockerSample()
    stop = threading.Event()
    thread = threading.Thread(
        target=_poll,
        args=(conninfo, pid, sample, stop, first_sample_after),
        name=f"lockwatch-{pid}",
        daemon=True,
    )
    thread.start()
    try:
        yield sample
    finally:
        stop.set()
        thread.join(timeout=5)


def _poll(
    conninfo: str, pid: int, sample: BlockerSample, stop: threading.Event, delay: float
) -> None:
    if stop.wait(delay):
        return
    try:
        with psycopg.connect(
            conninfo, autocommit=True, prepare_threshold=None, row_factory=dict_row
        ) as conn:
            while not stop.is_set():
                rows = conn.execute(query("blockers"), {"pid": pid}).fetchall()
                if rows:
                    sample.blockers = [Blocker(**row) for row in rows]
                stop.wait(POLL_INTERVAL)
    except psycopg.Error:
        return  # the watch only improves a message; the migration's own error still shows
