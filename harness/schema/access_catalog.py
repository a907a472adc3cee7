"""What the catalog says about who may reach the data: Supabase's database advisors, offline.

Each finding names the object and the statement that fixes it. Every query runs in its own
read-only transaction (`BEGIN READ ONLY`), with no session setting, so a transaction pooler
in between is fine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from reference.sqlfile import NamedQueries

query = NamedQueries("harness.schema", "access_catalog.sql")
FIX_MIGRATION = "apply reference/db/migrations/0015_roles_grants_rls.sql"


def _table(row: tuple[Any, ...]) -> str:
    name, state = row
    return (
        f"table {name}: row-level security {state} "
        f"(fix: ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY)"
    )


def _function(row: tuple[Any, ...]) -> str:
    name, grantees = row
    return (
        f"function {name} is executable by {grantees} "
        f"(fix: REVOKE EXECUTE ON FUNCTION {name} FROM PUBLIC, anon, authenticated)"
    )


def _relation(row: tuple[Any, ...]) -> str:
    name, grants = row
    return f"{name} grants {grants} (fix: REVOKE ALL ON {name} FROM PUBLIC, anon, authenticated)"


def _schema(row: tuple[Any, ...]) -> str:
    name, grants = row
    return (
        f"schema {name} grants {grants} "
        f"(fix: REVOKE ALL ON SCHEMA {name} FROM PUBLIC, anon, authenticated)"
    )


def _definer(row: tuple[Any, ...]) -> str:
    name = row[0]
    return (
        f"SECURITY DEFINER function {name} has no pinned search_path "
        f"(fix: ALTER FUNCTION {name} SET search_path = pg_catalog, pg_temp)"
    )


def _view(row: tuple[Any, ...]) -> str:
    name, owner = row
    return (
        f"view {name} bypasses row-level security (owner {owner} is not subject to it) "
        f"(fix: ALTER VIEW {name} SET (security_invoker = true))"
    )


def _policy(row: tuple[Any, ...]) -> str:
    name, roles = row
    policy, _, table = name.partition(" on ")
    return f"policy {name} applies to {roles} (fix: DROP POLICY {policy} ON {table})"


CHECKS: tuple[tuple[str, Callable[[tuple[Any, ...]], str]], ...] = (
    ("tables_without_rls", _table),
    ("exposed_schemas", _schema),
    ("exposed_functions", _function),
    ("exposed_relations", _relation),
    ("definers_without_search_path", _definer),
    ("views_bypassing_rls", _view),
    ("open_policies", _policy),
)


def read_only_rows(conn: psycopg.Connection[Any], name: str) -> list[tuple[Any, ...]]:
    """One named statement in a transaction of its own, read-only, rolled back afterwards."""
    conn.execute(b"BEGIN READ ONLY")
    try:
        return list(conn.execute(query(name)).fetchall())
    finally:
        conn.execute(b"ROLLBACK")


def access_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """Every finding, one line each (conn: autocommit, as any role that can read the catalog)."""
    problems: list[str] = []
    for name, describe in CHECKS:
        problems += [describe(row) for row in read_only_rows(conn, name)]
    return problems
