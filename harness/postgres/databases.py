"""Per-test databases: migrate once into a template, then clone it for every test."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from harness.postgres.logins import ServiceLogins, create_service_logins, drop_service_logins
from harness.postgres.server import DatabaseUrl, PostgresServer, PostgresSourceError
from harness.sql import query
from reference.db import apply_migrations


@dataclass
class CloneTimes:
    """How long template creation and each clone took, for the session summary."""

    template_seconds: float = 0.0
    clone_seconds: list[float] = field(default_factory=list)


class TestDatabases:
    """Creates the migrated template on a server and clones one database per test from it.

    Always over the server's direct connection, never through a pooler: CREATE DATABASE ...
    TEMPLATE fails while any session (a pooled server connection included) uses the template.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        # Unique per session, so two test runs can share one external server.
        self.prefix = f"dragonfly_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_template"
        self.times = CloneTimes()
        self._admin: psycopg.Connection[object] | None = None
        self._owns_template = True
        self.logins: ServiceLogins | None = None  # the services' login users (migration 0015)

    @property
    def admin(self) -> psycopg.Connection[object]:
        """The maintenance connection (autocommit, direct)."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = psycopg.connect(self.server.admin_conninfo, autocommit=True)
        return self._admin

    def _execute(self, statement: sql.Composed) -> None:
        try:
            self.admin.execute(statement)
        except psycopg.OperationalError:
            # A fault test restarted the server under the session: reconnect, once.
            if self._admin is not None:
                self._admin.close()
            self.admin.execute(statement)

    def create_template(self) -> None:
        """Create the template database and apply every migration to it, once."""
        started = time.monotonic()
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        apply_migrations(self.server.direct_conninfo_for(self.template))
        self._opt_in_test_clock(self.template)  # and so every clone
        # No connections to a template: CREATE DATABASE ... TEMPLATE fails while one is open.
        self._execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(self.template)
            )
        )
        self.times.template_seconds = time.monotonic() - started
        self.create_logins()

    def create_logins(self) -> None:
        """The services' least-privileged login users (none without migration 0015's roles)."""
        if self.logins is None:
            self.logins = create_service_logins(self.admin, self.prefix)

    def login_url(self, database_url: str, service: str) -> DatabaseUrl:
        """database_url as the "worker" or "api" login user; unchanged when there is none."""
        if self.logins is None:
            return DatabaseUrl(database_url)
        return self.logins.url(database_url, service)

    def _opt_in_test_clock(self, name: str) -> None:
        """Let the queue's clock be moved in this test database (migration 0011): a row that no
        connection setting can forge, so a production database keeps real time."""
        with psycopg.connect(self.server.direct_conninfo_for(name), autocommit=True) as conn:
            row = conn.execute(query("has_test_clock")).fetchone()
            if row is not None and row[0]:
                conn.execute(query("opt_in_test_clock"))

    def adopt_template(self, name: str) -> None:
        """Clone an existing database (your own schema) instead of a migrated template.

        It is left as it is at the end; it must have no other sessions while tests clone it.
        """
        self.template, self._owns_template = name, False
        self.create_logins()

    def clone(self) -> str:
        """A new database cloned from the template; returns its name."""
        name = f"{self.prefix}_{secrets.token_hex(6)}"
        started = time.monotonic()
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(self.template)
        )
        try:
            self._execute(statement)
        except psycopg.errors.ObjectInUse as error:
            if self.server.pooled:
                raise
            raise PostgresSourceError(
                f"cannot clone {self.template}: {error}. Another session uses it; when the URL "
                "goes through a transaction pooler (e.g. Supabase's on port 6543), give the "
                "server's direct URL too (--pg-direct-url or DRAGONFLY_PG_DIRECT_URL): the "
                "pooler keeps server connections to the template open"
            ) from None
        if not self._owns_template:
            self._opt_in_test_clock(name)  # the clone, never the adopted database itself
        self.times.clone_seconds.append(time.monotonic() - started)
        return name

    def drop(self, name: str) -> None:
        """Drop a database, disconnecting whatever still uses it."""
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def close(self) -> None:
        """Drop the template and close the admin connection."""
        try:
            if self.logins is not None:
                drop_service_logins(self.admin, self.logins)
            if not self._owns_template:
                return
            self._execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(
                    sql.Identifier(self.template)
                )
            )
            self.drop(self.template)
        finally:
            if self._admin is not None:
                self._admin.close()
