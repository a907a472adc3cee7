"""PostgresServer: what every source (container, embedded, external) hands the harness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reference.masking import MASK

# Tuned for throwaway test data, the same on every source the harness starts: nothing here
# needs to survive a power cut.
TEST_SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "shared_buffers=128MB",
)


class PostgresSourceError(RuntimeError):
    """A Postgres source could not provide a server."""


class RestartableServer(Protocol):
    """A server process the harness controls, for fault tests."""

    def stop(self, mode: str = "fast") -> None: ...

    def start(self) -> None: ...


class DatabaseUrl(str):
    """A postgresql:// URL whose repr hides the password (pytest shows fixture values' reprs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(str(as_url(str(self), masked=True)))


def as_url(conninfo: str, dbname: str | None = None, *, masked: bool = False) -> DatabaseUrl:
    """The postgresql:// URL form of a libpq connection string (either form), for URL clients.

    `masked`: the password reads as MASK (for showing the URL, never for connecting).
    """
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    if dbname is not None:
        params["dbname"] = dbname
    user, password = params.pop("user", ""), params.pop("password", "")
    host, port = params.pop("host", "localhost"), params.pop("port", "")
    name = params.pop("dbname", "")
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + (MASK if masked else quote(password, safe=""))
    netloc = f"{userinfo}@" if userinfo else ""
    netloc += f"[{host}]" if ":" in host else quote(host, safe="")
    if port:
        netloc += f":{port}"
    query = f"?{urlencode(params)}" if params else ""
    return DatabaseUrl(f"postgresql://{netloc}/{quote(name, safe='')}{query}")


@dataclass
class PostgresServer:
    """A running Postgres server and how to reach it."""

    source: str  # "container", "embedded", "external" or "pooler"
    conninfo: str = field(repr=False)  # connection string to the maintenance database
    description: str = ""  # where it runs, for reports (never holds a password)
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    _process: RestartableServer | None = field(default=None, repr=False)
    container_id: str | None = None  # the container source's, for pause and network faults
    # Behind a transaction pooler: the server's own address, for what a pooler cannot carry
    # (CREATE DATABASE ... TEMPLATE, migrations); None when `conninfo` is the server itself.
    direct_conninfo: str | None = field(default=None, repr=False)
    # Behind a transaction pooler: server connections per (database, user) pair, so a test can
    # visit every pooled server connection (open this many clients, each in a transaction).
    pool_size: int | None = None

    @property
    def pooled(self) -> bool:
        """Whether `conninfo` goes through a transaction pooler (no session state, no
        prepared statements kept between transactions)."""
        return self.direct_conninfo is not None

    @property
    def admin_conninfo(self) -> str:
        """The direct connection string to the maintenance database (clones, migrations)."""
        return self.direct_conninfo or self.conninfo

    def direct_conninfo_for(self, dbname: str) -> str:
        """The direct (never pooled) connection string for another database on this server."""
        return make_conninfo(self.admin_conninfo, dbname=dbname)

    def conninfo_for(self, dbname: str) -> str:
        """The libpq key=value connection string for another database on this server."""
        return make_conninfo(self.conninfo, dbname=dbname)

    def url_for(self, dbname: str) -> DatabaseUrl:
        """The postgresql:// URL of another database on this server."""
        return as_url(self.conninfo, dbname)

    @property
    def url(self) -> DatabaseUrl:
        """The postgresql:// URL of the maintenance database."""
        return as_url(self.conninfo)

    @property
    def password(self) -> str | None:
        """The password in the connection string, for masking it in reports."""
        value = conninfo_to_dict(self.conninfo).get("password")
        return str(value) if value else None

    @property
    def passwords(self) -> list[str]:
        """Every password this server's connection strings hold (pooled and direct)."""
        strings = [self.conninfo, *([self.direct_conninfo] if self.direct_conninfo else [])]
        found = [conninfo_to_dict(conninfo).get("password") for conninfo in strings]
        return list(dict.fromkeys(str(value) for value in found if value))

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
                "use the embedded source (--pg-source=embedded) or a durable container of the "
                "test's own (harness.postgres.container.start_container(image, durable=True))"
            )
        return self._process
