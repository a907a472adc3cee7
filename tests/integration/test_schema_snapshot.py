"""reference/db/schema.sql is the schema the migrations build: a change to it is reviewed.

After adding a migration, regenerate the file and commit it with the migration:

    DRAGONFLY_UPDATE_SCHEMA=1 .venv/bin/pytest tests/integration/test_schema_snapshot.py
"""

from __future__ import annotations

import os

import psycopg

from harness.schema.snapshot import (
    SCHEMA_SNAPSHOT,
    UPDATE_ENV,
    dump_schema,
    normalise,
    snapshot_diff,
)


def test_the_migrated_schema_is_the_committed_one(database_url: str) -> None:
    current = dump_schema(database_url)
    if os.environ.get(UPDATE_ENV) == "1":
        SCHEMA_SNAPSHOT.write_text(current)
    committed = SCHEMA_SNAPSHOT.read_text() if SCHEMA_SNAPSHOT.exists() else ""
    diff = snapshot_diff(committed, current)

    assert not diff, (
        f"the migrated schema differs from {SCHEMA_SNAPSHOT.name}; review the diff below, then "
        f"accept it with {UPDATE_ENV}=1 pytest {__file__} and commit schema.sql:\n{diff}"
    )


def test_a_changed_function_shows_in_the_diff_and_two_dumps_agree(database_url: str) -> None:
    before = dump_schema(database_url)
    assert dump_schema(database_url) == before
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION ops.clock() RETURNS timestamptz"
            " LANGUAGE sql STABLE AS $$ SELECT now() + interval '1 hour' $$"
        )

    diff = snapshot_diff(before, dump_schema(database_url))

    added = [line for line in diff.splitlines() if line.startswith("+")]
    assert any("interval '01:00:00'" in line or "interval '1 hour'" in line for line in added), diff


def test_normalising_drops_what_varies_between_runs() -> None:
    dump = (
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\n"
        "-- Dumped from database version 18.1\n-- Dumped by pg_dump version 18.1\n\n"
        "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
        "\n\n\nCREATE SCHEMA ops;\n\n\\unrestrict AbC123\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n"
    )
    text = normalise(dump)
    assert text.endswith("\nCREATE SCHEMA ops;\n")
    for varying in ("restrict", "Dumped", "SET statement_timeout", "set_config"):
        assert varying not in text.split("\n", 4)[-1]
