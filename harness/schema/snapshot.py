"""The migrated schema as one file (reference/db/schema.sql): pg_dump --schema-only, normalised.

A reader finds the current definition of every table, function and view there instead of
across the migrations that built it; tests/integration/test_schema_snapshot.py fails when it is
out of date. Regenerate it after adding a migration:

    DRAGONFLY_UPDATE_SCHEMA=1 .venv/bin/pytest tests/integration/test_schema_snapshot.py
"""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

from harness.postgres.embedded import embedded_bin_dir

SCHEMA_SNAPSHOT = Path(__file__).resolve().parents[2] / "reference" / "db" / "schema.sql"
UPDATE_ENV = "DRAGONFLY_UPDATE_SCHEMA"
HEADER = (
    "-- The schema that reference/db/migrations/ builds, dumped by pg_dump --schema-only and\n"
    "-- normalised (harness/schema/snapshot.py). Generated, do not edit; after a new migration:\n"
    f"--   {UPDATE_ENV}=1 .venv/bin/pytest tests/integration/test_schema_snapshot.py\n"
)
# Lines that differ between two dumps of the same schema: the versions of server and pg_dump,
# the random key of \restrict (pg_dump 17.6+), and the session settings of the restore script.
VARYING = re.compile(
    r"^(-- Dumped (from database|by pg_dump) version .*|\\(un)?restrict .*|SET \w+ = .*;"
    r"|SELECT pg_catalog\.set_config\('search_path', '', false\);)$"
)
DUMP_TIMEOUT = 120  # seconds


class SnapshotError(RuntimeError):
    """pg_dump could not dump the schema; the message says why."""


def dump_schema(url: str) -> str:
    """The normalised schema of the database at `url`."""
    pg_dump = embedded_bin_dir() / "pg_dump"
    result = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", "--dbname", url],
        capture_output=True,
        text=True,
        timeout=DUMP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise SnapshotError(f"pg_dump failed (exit {result.returncode}): {result.stderr.strip()}")
    return normalise(result.stdout)


def normalise(dump: str) -> str:
    """The dump without the lines that vary between runs, blank lines collapsed, one header."""
    lines = [line.rstrip() for line in dump.splitlines() if not VARYING.match(line)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    text = re.sub(r"^(--\n-- PostgreSQL database dump\n--\n*)", "", text)
    text = re.sub(r"(\n*--\n-- PostgreSQL database dump complete\n--)$", "", text)
    return f"{HEADER}\n{text.strip()}\n"


def snapshot_diff(committed: str, current: str) -> str:
    """A unified diff of the committed and the current schema, or "" when they agree."""
    return "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            current.splitlines(keepends=True),
            "committed reference/db/schema.sql",
            "the migrated schema",
            n=2,
        )
    )
