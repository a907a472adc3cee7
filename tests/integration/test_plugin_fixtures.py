"""The plugin's fixture values as a user's code and pytest's reports see them."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import PostgresDsn, TypeAdapter

from harness.postgres.server import PostgresServer, as_url


def test_database_url_is_a_postgresql_url_that_url_clients_accept(database_url: str) -> None:
    assert database_url.startswith("postgresql://")
    TypeAdapter(PostgresDsn).validate_python(database_url)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert row[0] == conninfo_to_dict(database_url)["dbname"]


def test_no_fixture_value_shows_the_password_in_its_repr(
    database_url: str, pg_server: PostgresServer, db_conn: psycopg.Connection[Any]
) -> None:
    password = str(conninfo_to_dict(database_url)["password"])
    assert password
    assert password not in repr(database_url)
    assert "***" in repr(database_url)
    assert password not in repr(pg_server)
    assert password not in f"{pg_server!r} {[database_url]!r}"


def test_the_key_value_form_stays_available(pg_server: PostgresServer) -> None:
    conninfo = pg_server.conninfo_for("postgres")
    assert "://" not in conninfo
    assert conninfo_to_dict(as_url(conninfo)) == conninfo_to_dict(conninfo)
