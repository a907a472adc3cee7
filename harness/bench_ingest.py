"""Benchmark: a generated CSV through the real Ingest Processor vs a raw COPY of the same file.

Both run against the same embedded server in the same run, interleaved, so the ratio holds
on a noisy shared machine even when the absolute figures drift.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from harness.csvgen import write_simplicity_csv
from harness.postgres.embedded import start_embedded
from harness.processes import ReferenceStack
from harness.sql import query
from harness.uploads import store_upload
from reference.db import apply_migrations

TARGET_RATIO = 0.3  # the target: worker rows/s at least 0.3 of raw COPY rows/s
BATCH_TIMEOUT = 600.0  # seconds one ingest may take before the benchmark gives up
COPY_CHUNK = 1 << 20  # bytes per COPY write

console = Console(highlight=False)


@dataclass
class Figures:
    copy_seconds: list[float] = field(default_factory=list)
    keyed_copy_seconds: list[float] = field(default_factory=list)
    worker_seconds: list[float] = field(default_factory=list)


def raw_copy_seconds(
    conn: psycopg.Connection[tuple[Any, ...]], csv_path: Path, table: str = "bare"
) -> float:
    """COPY the file as it is into a fresh "bare" or "keyed" table; the time it took."""
    conn.execute(query("drop_bench_table"))
    conn.execute(query(f"create_{table}_bench_table"))
    started = time.perf_counter()
    statement = query("copy_bench_table")
    with (
        csv_path.open("rb") as file,
        conn.transaction(),
        conn.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        while chunk := file.read(COPY_CHUNK):
            copy.write(chunk)
    return time.perf_counter() - started


def worker_seconds(conn: psycopg.Connection[Any], csv_path: Path) -> tuple[float, int]:
    """Store the file as an upload, let the running worker ingest it; (seconds, rows)."""
    conn.execute(query("empty_judgments"))
    batch_id, _job_id = store_upload(conn, csv_path)
    deadline = time.monotonic() + BATCH_TIMEOUT
    while time.monotonic() < deadline:
        result = conn.execute(query("batch_timing"), {"batch_id": batch_id}).fetchone()
        if result and result[0] in ("completed", "failed"):
            if result[0] != "completed":
                raise RuntimeError(f"batch {batch_id} failed")
            return float(result[1]), int(result[2])
        time.sleep(0.05)
    raise RuntimeError(f"batch {batch_id} did not finish within {BATCH_TIMEOUT:.0f}s")


def run_benchmark(rows: int, repeat: int) -> int:
    """Print rows/s for raw COPY and the worker, and their ratios (figures, not a verdict)."""
    server = start_embedded()
    workdir = Path(tempfile.mkdtemp(prefix="dragonfly-bench-"))
    stack = ReferenceStack(
        server.conninfo, workdir / "logs", extra_env={"WORKER_POLL_INTERVAL": "0.05"}
    )
    try:
        apply_migrations(server.conninfo)
        csv_path = write_simplicity_csv(workdir / "bench.csv", rows)
        size_mb = csv_path.stat().st_size / 1e6
        console.print(f"{rows:,} rows, {size_mb:.1f} MB; {server.description}")
        stack.start_worker("ingest")
        figures = Figures()
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            for _ in range(repeat):  # interleaved, so drift hits both alike
                figures.copy_seconds.append(raw_copy_seconds(conn, csv_path))
                figures.keyed_copy_seconds.append(raw_copy_seconds(conn, csv_path, "keyed"))
                seconds, ingested = worker_seconds(conn, csv_path)
                figures.worker_seconds.append(seconds)
                if ingested != rows:
                    raise RuntimeError(f"the worker saw {ingested} rows, expected {rows}")
        return _report(rows, figures)
    finally:
        stack.stop()
        server.stop()


def _rate(rows: int, seconds: list[float]) -> float:
    return rows / statistics.median(seconds)


def _report(rows: int, figures: Figures) -> int:
    worker_rate = _rate(rows, figures.worker_seconds)
    table = Table(title=f"ingest of {rows:,} rows (median of {len(figures.worker_seconds)})")
    for column in ("path", "runs (s)", "rows/s", "worker / this"):
        table.add_column(column)
    paths = [
        ("raw COPY into a bare text table", figures.copy_seconds),
        ("raw COPY into a table with uuid key + unique case_number", figures.keyed_copy_seconds),
        ("Ingest Processor worker (parse, validate, upsert)", figures.worker_seconds),
    ]
    for name, seconds in paths:
        rate = _rate(rows, seconds)
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        table.add_row(name, runs, f"{rate:,.0f}", f"{worker_rate / rate:.2f}")
    console.print(table)
    ratio = worker_rate / _rate(rows, figures.copy_seconds)
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    console.print(f"worker / raw COPY: {ratio:.2f} ({verdict} the target of {TARGET_RATIO})")
    return 0
