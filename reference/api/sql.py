"""The API's statements, from queries.sql, and two helpers that return rows as dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

from reference.sqlfile import NamedQueries

query = NamedQueries("reference.api", "queries.sql")


def execute(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> None:
    """Run the named statement, ignoring any rows."""
    conn.execute(query(name), params)


def fetch_all(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every row of the named statement."""
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(query(name), params)
        return cursor.fetchall()


def fetch_one(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The first row of the named statement, or None."""
    rows = fetch_all(conn, name, params)
    return rows[0] if rows else None
