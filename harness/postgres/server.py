"""PostgresServer: what every source (container, embedded, external) hands the harness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class PostgresSourceError(RuntimeError):
    """A Postgres source could not provide a server."""


@dataclass
class PostgresServer:
    """A running Postgres server and how to reach it."""

    source: str  # "container", "embedded" or "external"
    conninfo: str  # connection string to the maintenance database
    description: str  # where it runs, for reports (never holds a password)
    _stop: Callable[[], None] | None = field(default=None, repr=False)

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
