"""Migration 0014 on a database that already holds judgments, colliding spellings among them."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from harness.postgres.databases import TestDatabases
from harness.postgres.server import PostgresServer
from reference.db import load_migrations

KEYS_MIGRATION = 14


def test_existing_judgments_get_their_keys_and_the_first_of_a_collision_wins(
    pg_server: PostgresServer, pg_databases: TestDatabases
) -> None:
    name = f"{pg_databases.prefix}_keys"
    pg_databases.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(pg_server.conninfo_for(name), autocommit=True) as conn:
            migrations = load_migrations()
            for migration in migrations:
                if migration.version < KEYS_MIGRATION:
                    conn.execute(migration.sql.encode())
            for case_number, age in (
                ("kgs-2024-001", 3),
                ("KGS-2024-001", 2),  # the same case, stored later in another spelling
                ("CV-7", 1),
            ):
                conn.execute(
                    "INSERT INTO public.judgments (case_number, plaintiff, defendant, created_at)"
                    " VALUES (%s, 'P', 'D', now() - %s * interval '1 day')",
                    (case_number, age),
                )
            [keys] = [m for m in migrations if m.version == KEYS_MIGRATION]

            conn.execute(keys.sql.encode())

            rows: list[tuple[Any, ...]] = conn.execute(
                "SELECT k.case_key, j.case_number FROM public.judgment_case_keys AS k"
                " JOIN public.judgments AS j ON j.id = k.judgment_id ORDER BY 1"
            ).fetchall()
            assert rows == [("cv-7", "CV-7"), ("kgs-2024-001", "kgs-2024-001")]
            unkeyed = conn.execute(
                "SELECT case_number FROM public.judgments AS j WHERE NOT EXISTS"
                " (SELECT FROM public.judgment_case_keys AS k WHERE k.judgment_id = j.id)"
            ).fetchall()
            assert unkeyed == [("KGS-2024-001",)]  # kept, with its plans; listed for an operator
    finally:
        pg_databases.drop(name)
