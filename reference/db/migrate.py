"""Apply the numbered SQL migrations once, in order, recording each in ops.schema_migrations."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

# One fixed key for pg_advisory_xact_lock: every migrating process queues behind it, so two
# processes starting at once apply each file exactly once.
MIGRATION_LOCK_KEY = 7_204_881_310_442_170_001
MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

BOOKKEEPING_SQL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class MigrationError(Exception):
    """The database's migration history does not match the migration files."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The packaged migrations, ordered by version."""
    folder = resources.files("reference.db") / "migrations"
    migrations = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match:
            migrations.append(
                Migration(int(match["version"]), match["name"], entry.read_text("utf-8"))
            )
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return migrations


def apply_migrations(conninfo: str) -> list[Migration]:
    """Bring the database at conninfo up to date; returns the migrations applied now."""
    migrations = load_migrations()
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(BOOKKEEPING_SQL)
        rows = conn.execute("SELECT version, name, checksum FROM ops.schema_migrations").fetchall()
        applied = {version: (name, checksum) for version, name, checksum in rows}
        _check_history(migrations, applied)
        pending = [migration for migration in migrations if migration.version not in applied]
        for migration in pending:
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    return pending


def _check_history(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
    known = {migration.version: migration for migration in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}_{name} applied, which this code "
                "does not know: it was migrated by a newer version; upgrade this code"
            )
        if migration.checksum != checksum or migration.name != name:
            raise MigrationError(
                f"migration {version:04d}_{name} was changed after it was applied; "
                "add a new migration instead of editing an applied one"
            )
    newest = max(applied, default=0)
    late = [m for m in migrations if m.version not in applied and m.version < newest]
    if late:
        raise MigrationError(
            f"migration {late[0].version:04d}_{late[0].name} is older than the newest applied "
            f"one ({newest:04d}) but was never applied (two branches merged?); renumber it "
            "after the newest"
        )
