"""A durable embedded PostgreSQL (fsync on) for the benchmark, its databases, and pgbench."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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


def run_pgbench(
    server: EmbeddedPostgres,
    database: str,
    script: Path,
    *,
    clients: int,
    seconds: int,
    variables: dict[str, str] | None = None,
) -> float:
    """Transactions per second of `script` (prepared statements, no vacuum, 2 threads);
    `variables` are set in every client before its first transaction."""
    defines = [f"--define={name}={value}" for name, value in (variables or {}).items()]
    result = subprocess.run(
        [
            str(server.bin_dir / "pgbench"),
            "-n",
            "-M",
            "prepared",
            *defines,
            "-f",
            str(script),
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(seconds),
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            "postgres",
            database,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGPASSWORD": server.password},
        timeout=seconds + 60,
    )
    match = TPS.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip()[-1000:]}")
    return float(match["tps"])
