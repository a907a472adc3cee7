"""The `schema` check compares the target with the manifest derived from the migrations.

`smoke/schema_manifest.json` is generated from a database migrated by the packaged migrations;
regenerate it after adding a migration with (one command)

    DRAGONFLY_UPDATE_SCHEMA_MANIFEST=1 .venv/bin/pytest tests/smoke/test_smoke_schema.py \
        -k up_to_date
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from smoke_runs import ProdDeployment, run_smoke

from reference.db import load_migrations
from smoke import schema

Conn = psycopg.Connection[Any]
UPDATE_ENV = "DRAGONFLY_UPDATE_SCHEMA_MANIFEST"


def test_manifest_is_up_to_date(database_url: str) -> None:
    """The manifest of a database the packaged migrations built matches the committed one."""
    # In a process of its own: here `smoke` is this folder, and its .sql file would not be found.
    write = ["--write"] if os.environ.get(UPDATE_ENV) == "1" else []
    printed = subprocess.run(
        [sys.executable, "-m", "smoke.schema", "--db-url", database_url, *write],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    current = json.loads(printed or schema.MANIFEST_PATH.read_text())
    committed = json.loads(schema.MANIFEST_PATH.read_text())
    assert committed == current, (
        f"smoke/schema_manifest.json is out of date with reference/db/migrations; regenerate it "
        f"with {UPDATE_ENV}=1 .venv/bin/pytest tests/smoke/test_smoke_schema.py -k up_to_date"
    )
    latest = load_migrations()[-1]
    assert current["migrations"][-1] == f"{latest.version:04d}_{latest.name}"


def test_manifest_holds_every_queue_function_and_the_clock() -> None:
    functions = schema.load_manifest()["objects"]["function"]
    for name in ("complete_jobs", "complete_job_and_claim", "prune_history", "clock"):
        assert any(f.startswith(f"ops.{name}(") for f in functions), name


def test_a_missing_function_and_an_unrecorded_migration_fail_schema(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    latest = load_migrations()[-1]
    db_conn.execute(
        "DROP FUNCTION ops.complete_job_and_claim(uuid, text, text[], integer, interval)"
    )
    db_conn.execute("DROP FUNCTION ops.prune_history")
    db_conn.execute("DELETE FROM ops.schema_migrations WHERE version = %s", [latest.version])
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"schema"}
    detail = run.detail("schema")
    assert "function ops.complete_job_and_claim(" in detail
    assert "function ops.prune_history(" in detail
    assert f"migration {latest.version:04d}_{latest.name} is not recorded" in detail
