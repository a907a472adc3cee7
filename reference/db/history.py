"""The migration files: versions, names, checksums, the no-transaction marker, the history check."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
NO_TRANSACTION_MARKER = "-- dragonfly: no-transaction"


class MigrationError(Exception):
    """The migrations could not be applied; the message names the migration and the fix."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def transactional(self) -> bool:
        """False for a file whose first line is exactly the no-transaction marker."""
        lines = self.sql.splitlines()
        return not lines or lines[0] != NO_TRANSACTION_MARKER


def load_migrations(folder: Traversable | Path | None = None) -> list[Migration]:
    """The migrations in `folder` (default: the packaged ones), ordered by version."""
    if folder is None:
        folder = resources.files("reference.db") / "migrations"
    migrations = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match:
            migration = Migration(int(match["version"]), match["name"], entry.read_text("utf-8"))
            _check_marker(migration)
            migrations.append(migration)
    return ordered_migrations(migrations)


def ordered_migrations(migrations: Sequence[Migration]) -> list[Migration]:
    ordered = sorted(migrations, key=lambda migration: migration.version)
    versions = [migration.version for migration in ordered]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return ordered


def _check_marker(migration: Migration) -> None:
    if migration.transactional and "dragonfly: no-transaction" in migration.sql:
        raise MigrationError(
            f"migration {migration.label} mentions the no-transaction marker but not as its "
            f"first line; make the first line exactly {NO_TRANSACTION_MARKER!r}"
        )


def check_history(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
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
