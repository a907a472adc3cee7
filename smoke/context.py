"""What every check reads: the addresses to test, their secrets, the thresholds, the run's state."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
import psycopg

from harness.targets import Mode
from smoke.database import SmokeDatabase
from smoke.runner import CheckFailedError

USER_AGENT = "dragonfly-smoke/1"


@dataclass(frozen=True)
class Thresholds:
    """Limits the checks hold the target to (each has a command-line flag)."""

    latency_budget: float = 2.0  # seconds for GET / and /health
    lock_timeout: float = 30 * 60  # seconds: a processing lease older than this is stuck
    max_pending_age: float = 15 * 60  # seconds the oldest due pending job may have waited
    max_dead_letters: int = 10  # dead-lettered jobs allowed in the dead-letter window
    dead_letter_window: float = 24 * 3600  # seconds
    heartbeat_max_age: float = 90.0  # seconds: v_worker_status calls a worker stale after 90 s
    max_starts: int = 3  # worker starts allowed per type within the crash window
    crash_window: float = 5 * 60  # seconds (the runbook: "no crash loops after 5 minutes")
    canary_timeout: float = 30.0  # seconds for a worker to complete the canary
    statement_timeout: float = 5.0  # seconds for any one query


@dataclass
class SmokeContext:
    """The target as the checks see it; secrets only through `mask`-ed messages."""

    mode: Mode
    is_local: bool
    env: Mapping[str, str]  # the variables the run was started with (the config check reads them)
    api_url: str | None
    db_url: str | None
    supabase_url: str | None
    supabase_key: str | None
    dashboard_url: str | None
    api_key: str | None
    mask: Callable[[str], str]
    thresholds: Thresholds = field(default_factory=Thresholds)
    may_write: bool = False
    canary: bool = False
    canary_csv: bool = False
    run_id: str = ""
    db_error: str | None = None  # set by db_connect when it fails; later checks say so
    db_checked: bool = False
    # The canary's writes and its cleanup take turns: once the cleanup has begun
    # (`canary_stopped`), a canary whose check the runner gave up on writes nothing more.
    canary_lock: threading.Lock = field(default_factory=threading.Lock)
    canary_stopped: bool = False
    canary_wrote: bool = False  # a canary write began: the cleanup has something to look for

    def http(self, timeout: float) -> httpx.Client:
        """A client that never follows redirects silently and gives up after `timeout`."""
        return httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # no proxy from the environment between us and the target
        )

    def connect(self) -> SmokeDatabase:
        """The target database; each statement in a read-only (or canary write) transaction of
        its own, bounded by the statement_timeout threshold."""
        if self.db_url is None:
            raise CheckFailedError(
                "cannot run: no database URL (--db-url or SUPABASE_DB_URL_<MODE>)"
            )
        if self.db_error is not None:
            raise CheckFailedError(f"cannot run: db_connect failed ({self.db_error})")
        try:
            return SmokeDatabase.connect(self.db_url, self.thresholds.statement_timeout)
        except psycopg.Error as error:
            raise CheckFailedError(f"cannot connect: {first_line(error)}") from None


def first_line(error: BaseException) -> str:
    """The first line of an error's text (psycopg adds hints and context on later lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
