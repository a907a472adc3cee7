"""A durable embedded PostgreSQL (fsync on) for the benchmark, its databases, and pgbench."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from harness.postgres.embedded import EmbeddedPostgres
from reference.db import apply_migrations

# Durable commits, as production runs: the figures of a benchmark with fsync off flatter the
# commit-bound one-job-per-claim path most.
DURABLE_SETTINGS = (
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    "max_connections=300",
    "shared_buffers=256MB",
)
TPS = re.compile(r"^tps = (?P<tps>[\d.]+) \(without initial connection time\)$", re.MULTILINE)


@contextmanager
def durable_server(data_root: Path | None = None) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_root, settings=DURABLE_SETTINGS)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


def create_database(server: EmbeddedPostgres, name: str, *, migrate: bool = True) -> str:
    """A new database on the server (migrated unless told not to); its URL."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.conninfo(name)
    if migrate:
        apply_migrations(url)
    return url


def create_update_database(server: EmbeddedPostgres, name: str) -> str:
    """A database holding only `bench_row`, the 20,000 rows the single-row UPDATE baseline
    (cases.UPDATE_SCRIPT) picks from; its URL."""
    url = create_database(server, name, migrate=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_row (id integer PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO bench_row SELECT g, 0 FROM generate_series(1, 20000) g")
        conn.execute("VACUUM ANALYZE bench_row")
    return url


@dataclass(frozen=True)
class PgbenchRun:
    """How pgbench runs a script: clients, seconds, variables set in every client before its
    first transaction, an optional schedule (`rate` transactions/s across all clients), and
    whether to log each transaction's time (it costs a little, so not for the limit)."""

    clients: int
    seconds: int
    variables: dict[str, str] = field(default_factory=dict)
    rate: int | None = None
    log: bool = False


def run_pgbench(
    server: EmbeddedPostgres,
    database: str,
    script: Path,
    *,
    clients: int,
    seconds: int,
    variables: dict[str, str] | None = None,
) -> float:
    """Transactions per second of `script` (prepared statements, no vacuum, 2 threads)."""
    run = PgbenchRun(clients, seconds, variables or {})
    return pgbench(server, database, script, run)[0]


def pgbench(
    server: EmbeddedPostgres, database: str, script: Path, run: PgbenchRun
) -> tuple[float, list[float]]:
    """Transactions per second of `script`, and (when `run.log`) each transaction's own time in
    seconds, from pgbench's per-transaction log (a scheduled run's lag left out)."""
    defines = [f"--define={name}={value}" for name, value in run.variables.items()]
    schedule = ["--rate", str(run.rate)] if run.rate else []
    with tempfile.TemporaryDirectory(prefix="pgbench-log-") as logs:
        result = subprocess.run(
            [
                str(server.bin_dir / "pgbench"),
                *("-n", "-M", "prepared", *defines, *schedule, "-f", str(script)),
                *("-c", str(run.clients), "-j", str(min(run.clients, 2)), "-T", str(run.seconds)),
                *(("--log", f"--log-prefix={Path(logs) / 'tx'}") if run.log else ()),
                *("-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", database),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PGPASSWORD": server.password},
            timeout=run.seconds + 60,
        )
        match = TPS.search(result.stdout)
        if result.returncode != 0 or match is None:
            raise RuntimeError(f"pgbench failed: {result.stderr.strip()[-1000:]}")
        return float(match["tps"]), _transaction_seconds(Path(logs))


def _transaction_seconds(logs: Path) -> list[float]:
    """Per-transaction log lines: client, number, latency_us, script, epoch, us[, lag_us]."""
    seconds: list[float] = []
    for log in logs.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            lag = int(fields[6]) if len(fields) > 6 else 0
            seconds.append((int(fields[2]) - lag) / 1e6)
    return seconds
