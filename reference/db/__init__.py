"""The database schema: numbered SQL migrations and the runner that applies them."""

from reference.db.history import Migration, MigrationError, load_migrations
from reference.db.migrate import (
    LockTimeoutError,
    MigrationSettings,
    apply_migrations,
    pending_migrations,
)

__all__ = [
    "LockTimeoutError",
    "Migration",
    "MigrationError",
    "MigrationSettings",
    "apply_migrations",
    "load_migrations",
    "pending_migrations",
]
