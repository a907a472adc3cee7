"""The schema as a contract: migrate, the snapshot, the migration linter, the access matrix."""
