"""PostgresServer: what every source (container, embedded, external) hands the harness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class PostgresSourceError(RuntimeError):
    """A Postgres source could not provide a server."""


class RestartableServer(Protocol):
    """A server process the harness controls, for fault tests."""

    def stop(self, mode: str = "fast") -> None: ...

    def start(self) -> None: ...


@dataclass
class PostgresServer:
    """A running Postgres server and how to reach it."""

    source: str  # "container", "embedded" or "external"
    conninfo: str  # connection string to the maintenance database
    description: str  # where it runs, for reports (never holds a password)
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    _process: RestartableServer | None = field(default=None, repr=False)

    def conninfo_for(self, dbname: str) -> str:
        """The connection string for another database on this server."""
        return make_conninfo(self.conninfo, dbname=dbname)

    @property
    def dbname(self) -> str:
        return str(conninfo_to_dict(self.conninfo).get("dbname", "postgres"))

    def stop(self) -> None:
        """Stop the server if the harness started it; an external server is left alone."""
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()

    def crash(self) -> None:
        """Kill the server as a power cut would (immediate stop: no checkpoint, sessions cut)."""
        self._controlled().stop("immediate")

    def restart(self) -> None:
        """Start the server again on the same port after crash()."""
        self._controlled().start()

    def _controlled(self) -> RestartableServer:
        if self._process is None:
            raise PostgresSourceError(
                f"{self.source}: the harness cannot stop and start this server; "
                "fault tests need the embedded source (--pg-source=embedded)"
            )
        return self._process
