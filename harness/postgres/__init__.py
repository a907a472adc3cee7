"""A real Postgres for tests from three sources: testcontainers, embedded, or an external URL."""
