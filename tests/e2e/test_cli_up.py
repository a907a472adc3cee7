"""`dragonfly-harness up` (the README's `./dev up`) as a real process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

UP = [sys.executable, "-m", "harness.cli", "up"]
START_TIMEOUT = 90  # seconds


def test_up_starts_postgres_applies_migrations_and_stops_by_itself() -> None:
    result = subprocess.run(
        [*UP, "--exit-after", "0.5"], capture_output=True, text=True, timeout=START_TIMEOUT
    )

    assert result.returncode == 0, result.stderr
    assert "postgres:   embedded PostgreSQL on 127.0.0.1:" in result.stdout
    assert "migrations: 4 applied now (job_queue, queue_functions," in result.stdout
    assert result.stdout.rstrip().endswith("stopped")


def test_up_serves_a_migrated_database_until_ctrl_c(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*UP, "--pg-data-root", str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("ready"):
                    break
            match = re.search(r"^database:\s+(\S+)$", "".join(lines), flags=re.MULTILINE)
            assert match, lines
            with psycopg.connect(match[1]) as conn:
                row = conn.execute("SELECT count(*) FROM ops.schema_migrations").fetchone()
            assert row is not None
            assert row[0] >= 4

            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
            assert "stopped" in process.stdout.read()
            assert list(tmp_path.iterdir()) == []  # the server's data folder is gone
        finally:
            process.kill()


def test_up_with_an_unreachable_external_server_fails_with_a_clear_message() -> None:
    result = subprocess.run(
        [*UP, "--pg-source", "external", "--pg-url", "postgresql://u:s3cret@127.0.0.1:1/db"],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )

    assert result.returncode == 1
    assert "external: cannot connect to 127.0.0.1:1/db" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
