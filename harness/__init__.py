"""dragonfly-harness: the pytest plugin and the Postgres, process and telemetry orchestration."""
