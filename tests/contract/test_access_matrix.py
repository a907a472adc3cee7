"""The access matrix (harness/schema/access_matrix.py, the README's table), cell by cell.

Against this test's database every cell is tried as its role, inside a transaction
(`SET LOCAL ROLE`, never a session setting): an allowed cell gets past the permission check,
a denied one ends in `permission denied`. Against a named target (--db-url) the same matrix
is read from the catalog only (has_function_privilege, has_table_privilege, relrowsecurity,
relforcerowsecurity, the policies' roles), read-only. A function or table the matrix does not
mention fails here, so whatever a later migration adds gets a decision and its GRANT.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from harness.schema.access_catalog import access_problems
from harness.schema.access_matrix import (
    FUNCTIONS,
    POLICY_ROLES,
    PRIVILEGES,
    RELATIONS,
    ROLES,
    VIEWS,
    allowed,
    query,
)

Conn = psycopg.Connection[Any]
FIX = "add its decision to harness/schema/access_matrix.py and its GRANT to a migration"


def _rows(conn: Conn, name: str, **params: object) -> list[tuple[Any, ...]]:
    with conn.transaction():
        return list(conn.execute(query(name), params or None).fetchall())


def _functions(conn: Conn) -> list[tuple[str, str, list[str]]]:
    return [(str(n), str(s), list(t)) for n, s, t in _rows(conn, "matrix_functions")]


def _attempt(conn: Conn, role: str, statement: sql.Composable) -> str | None:
    """The permission error `statement` meets as `role`; None when it got past the checks."""
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL statement_timeout = '10s'")
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))  # must work
        try:
            with conn.transaction():  # a savepoint: the statement's error ends only it
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as error:
            return str(error).splitlines()[0]
        except psycopg.Error:
            return None  # a NULL argument refused, a NOT NULL column: past the permission check
    return None


def _qualified(name: str) -> sql.Composable:
    schema, _, relation = name.partition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(relation))


def _relation_statement(conn: Conn, relation: str, privilege: str) -> sql.Composable:
    table = _qualified(relation)
    if privilege == "SELECT":
        return sql.SQL("SELECT count(*) FROM {}").format(table)
    if privilege == "INSERT":
        return sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table)
    if privilege == "DELETE":
        return sql.SQL("DELETE FROM {} WHERE false").format(table)
    column = sql.Identifier(str(_rows(conn, "first_column", relation=relation)[0][0]))
    return sql.SQL("UPDATE {} SET {} = {} WHERE false").format(table, column, column)


def test_every_function_and_table_has_a_decision(own_db: Conn) -> None:
    """Of the migrations here (a deployment's own extra tables in public are its business)."""
    functions = {name for name, _, _ in _functions(own_db)}
    relations = {str(row[0]) for row in _rows(own_db, "matrix_relations")}
    undecided = sorted(functions - set(FUNCTIONS)) + sorted(relations - set(RELATIONS))
    assert not undecided, f"no decision in the access matrix for {undecided}: {FIX}"
    stale = sorted(set(FUNCTIONS) - functions) + sorted(set(RELATIONS) - relations)
    assert not stale, f"the access matrix names {stale}, which the database lacks: remove them"


def test_the_catalog_grants_what_the_matrix_says(contract_db: Conn) -> None:
    """Read-only, so it runs against a named target too: the catalog agrees with every cell."""
    present = {str(row[0]) for row in _rows(contract_db, "roles_present", roles=list(ROLES))}
    assert present == set(ROLES), f"missing roles {sorted(set(ROLES) - present)}: apply 0015"
    wrong = []
    for name, signature, _ in _functions(contract_db):
        for role in ROLES:
            want = role in FUNCTIONS.get(name, frozenset())
            got = _rows(contract_db, "function_privilege", role=role, signature=signature)[0][0]
            if got != want:
                wrong.append(f"{role} EXECUTE {signature}: {got}, matrix says {want}")
    for relation in RELATIONS:
        for role in ROLES:
            for privilege in PRIVILEGES:
                want = allowed(role, relation, privilege)
                got = _rows(
                    contract_db, "table_privilege", role=role, relation=relation,
                    privilege=privilege,
                )[0][0]  # fmt: skip
                if got != want:
                    wrong.append(f"{role} {privilege} {relation}: {got}, matrix says {want}")
        if relation not in VIEWS:
            enabled, forced, roles = _rows(contract_db, "row_security", relation=relation)[0]
            if not (enabled and forced):
                wrong.append(f"{relation}: row-level security enabled={enabled} forced={forced}")
            if not set(roles) <= POLICY_ROLES:
                wrong.append(f"{relation}: a policy applies to {sorted(set(roles) - POLICY_ROLES)}")
    assert not wrong, "the catalog differs from the access matrix:\n" + "\n".join(wrong)
    assert access_problems(contract_db) == []


@pytest.mark.parametrize("role", ROLES)
def test_each_function_cell_as_its_role(own_db: Conn, role: str) -> None:
    wrong = []
    for name, signature, types in _functions(own_db):
        arguments = sql.SQL(", ").join(sql.SQL("NULL::{}").format(sql.SQL(t)) for t in types)
        call = sql.SQL("SELECT {}({})").format(_qualified(name), arguments)
        denied = _attempt(own_db, role, call)
        if name in ("ops.touch_updated_at", "ops.ingest_batch_follows_job") and denied is None:
            continue  # a trigger function: no role executes it; the catalog test checks it
        want = role in FUNCTIONS.get(name, frozenset())
        if want and denied:
            wrong.append(f"{role} cannot call {signature}: {denied}")
        elif not want and denied is None:
            wrong.append(f"{role} can call {signature}, which the matrix denies it")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_each_table_cell_as_its_role(own_db: Conn, role: str) -> None:
    wrong = []
    for relation in RELATIONS:
        privileges = ("SELECT",) if relation in VIEWS else PRIVILEGES
        for privilege in privileges:
            denied = _attempt(own_db, role, _relation_statement(own_db, relation, privilege))
            want = allowed(role, relation, privilege)
            if want and denied:
                wrong.append(f"{role} cannot {privilege} {relation}: {denied}")
            elif not want and denied is None:
                wrong.append(f"{role} can {privilege} {relation}, which the matrix denies it")
    assert not wrong, "\n".join(wrong)


def test_row_level_security_hides_every_row_from_anon_even_with_a_grant(own_db: Conn) -> None:
    own_db.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount, "
        "filing_date) VALUES ('CV-RLS-1', 'P', 'D', 10, '2024-01-01')"
    )
    seen = {}
    for role in ("anon", "authenticated", "dragonfly_api", "dragonfly_worker"):
        with own_db.transaction(force_rollback=True):
            # As if a grant slipped back in: only the policies stand between anon and the rows.
            own_db.execute(sql.SQL("GRANT SELECT ON public.judgments TO {}").format(
                sql.Identifier(role)))  # fmt: skip
            own_db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            row = own_db.execute("SELECT count(*) FROM public.judgments").fetchone()
            seen[role] = row[0] if row else None
    assert seen == {"anon": 0, "authenticated": 0, "dragonfly_api": 1, "dragonfly_worker": 1}


def test_a_later_function_is_caught_and_not_executable_by_public(own_db: Conn) -> None:
    """What a later migration adds: no EXECUTE for PUBLIC by default, and no decision yet."""
    own_db.execute("CREATE FUNCTION ops.later_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    row = own_db.execute(
        "SELECT has_function_privilege('anon', 'ops.later_probe()', 'EXECUTE'), "
        "has_function_privilege('dragonfly_worker', 'ops.later_probe()', 'EXECUTE')"
    ).fetchone()
    assert row == (False, False)
    with pytest.raises(AssertionError, match=r"no decision in the access matrix for \['ops\.later"):
        test_every_function_and_table_has_a_decision(own_db)
