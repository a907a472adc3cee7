"""The database schema: numbered SQL migrations and the runner that applies them."""

from reference.db.migrate import Migration, MigrationError, apply_migrations, load_migrations

__all__ = ["Migration", "MigrationError", "apply_migrations", "load_migrations"]
