"""An existing PostgreSQL server given by URL: a CI service container, a staging database."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from harness.postgres.server import PostgresServer, PostgresSourceError

CONNECT_TIMEOUT = 5  # seconds


def masked(conninfo: str) -> str:
    """host:port/dbname of a connection string, without user or password."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparseable connection string>"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def use_external(conninfo: str, direct: str | None = None) -> PostgresServer:
    """The server at conninfo, after checking that it answers and may create databases.

    `direct`: the server's own address when `conninfo` goes through a transaction pooler;
    databases are created and cloned over it (a pooler keeps server connections to the
    template open, and CREATE DATABASE ... TEMPLATE fails while any is).
    """
    if direct:
        _check_answers(conninfo, "--pg-url or DRAGONFLY_PG_URL")
    admin, option = (
        (direct, "--pg-direct-url or DRAGONFLY_PG_DIRECT_URL")
        if direct
        else (
            conninfo,
            "--pg-url or DRAGONFLY_PG_URL",
        )
    )
    where = masked(admin)
    may_create = _check_answers(admin, option)
    if not may_create or not may_create[0]:
        raise PostgresSourceError(
            f"external: the role at {where} may not create databases; the harness clones one "
            "database per test: grant CREATEDB or use another role"
        )
    description = f"external {masked(conninfo)}"
    if direct:
        description += f" (pooled; direct {where} for clones and migrations)"
    return PostgresServer(
        source="external",
        conninfo=conninfo,
        description=description,
        direct_conninfo=direct or None,
    )


def _check_answers(conninfo: str, option: str) -> tuple[object, ...] | None:
    """Whether the role may create databases; a clear error when the server does not answer."""
    where = masked(conninfo)
    try:
        with psycopg.connect(
            conninfo, connect_timeout=CONNECT_TIMEOUT, prepare_threshold=None
        ) as conn:
            may_create = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as error:
        # psycopg's message can quote the connection string; say only where and what kind.
        raise PostgresSourceError(
            f"external: cannot connect to {where} ({type(error).__name__}); check the URL "
            f"given by {option} and that the server is up"
        ) from None
    return may_create
