"""Connecting through a transaction pooler: whether psycopg may prepare statements.

psycopg 3 prepares a statement on the server once it ran 5 times on a connection. Behind a
transaction pooler (PgBouncer in transaction mode, Supabase's pooler on port 6543) the next
transaction may run on another server connection, where the statement does not exist, already
exists, or is another client's of the same name. `DATABASE_PREPARED_STATEMENTS` says what to do:

- `auto` (default): off for a URL that names Supabase's transaction pooler (port 6543, or a
  `*.pooler.supabase.com` host), on otherwise;
- `on` / `off`: configured, whatever the URL.

Every connection the project opens takes `connect_kwargs(url)` (the API's pool, the workers and
their lease keepers, the load users and watchers, the harness's fixtures and tools).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

PREPARED_STATEMENTS_ENV = "DATABASE_PREPARED_STATEMENTS"
SUPABASE_POOLER_PORT = "6543"  # Supavisor's transaction mode (5432 on the pooler is session mode)
SUPABASE_POOLER_HOST_SUFFIX = ".pooler.supabase.com"


class PreparedStatements(StrEnum):
    AUTO = "auto"
    ON = "on"
    OFF = "off"


class PreparedStatementsError(ValueError):
    """DATABASE_PREPARED_STATEMENTS holds something else than auto, on or off."""


def parse_prepared_statements(raw: str | None) -> PreparedStatements:
    """The setting from its text (blank: auto); a clear error naming the variable otherwise."""
    value = (raw or "").strip().lower() or PreparedStatements.AUTO.value
    try:
        return PreparedStatements(value)
    except ValueError:
        raise PreparedStatementsError(
            f"{PREPARED_STATEMENTS_ENV}: {raw!r} is not one of auto, on, off — set it to off "
            "behind a transaction pooler, on for a direct connection, or auto (the default)"
        ) from None


def behind_transaction_pooler(url: str) -> bool:
    """Whether the URL names Supabase's transaction pooler (port 6543 or a pooler host).

    Any other pooler (your own PgBouncer) cannot be told from its URL: configure it.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return False  # the connection itself will report the bad URL
    hosts = str(params.get("host") or "").lower().split(",")
    ports = str(params.get("port") or "").split(",")
    return SUPABASE_POOLER_PORT in ports or any(
        host.endswith(SUPABASE_POOLER_HOST_SUFFIX) for host in hosts
    )


def prepares_statements(url: str, setting: PreparedStatements) -> bool:
    """Whether connections to `url` may use server-side prepared statements."""
    if setting is PreparedStatements.AUTO:
        return not behind_transaction_pooler(url)
    return setting is PreparedStatements.ON


def connect_kwargs(
    url: str,
    setting: PreparedStatements | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect (or a pool's `kwargs`) for a connection to `url`.

    `setting` None: read DATABASE_PREPARED_STATEMENTS from `environ` (default: the process
    environment), as the tools do; the services pass the one their Settings parsed.
    """
    if setting is None:
        source = os.environ if environ is None else environ
        setting = parse_prepared_statements(source.get(PREPARED_STATEMENTS_ENV))
    if prepares_statements(url, setting):
        return {}
    return {"prepare_threshold": None}
