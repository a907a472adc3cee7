"""Benchmark: a generated CSV through the real Ingest Processor vs a raw COPY of the same file.

Both run against the same embedded server in the same run, interleaved, so the ratio holds
on a noisy shared machine even when the absolute figures drift. The worker's stage timings
come from its own spans (sent to an in-process OTLP receiver), its peak memory from /proc.
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

from harness.inputs.csvgen import write_simplicity_csv
from harness.inputs.uploads import store_upload
from harness.postgres.embedded import start_embedded
from harness.sql import query
from harness.stack.processes import ReferenceStack
from harness.telemetry.collector import OtlpCollector
from harness.waiting import wait_until
from reference.db import apply_migrations

TARGET_RATIO = 0.5  # the target: worker rows/s at least 0.5 of the keyed COPY's
TARGET_PEAK_MB = 150  # the worker's peak resident memory for a 10 MB file, at most
BATCH_TIMEOUT = 600.0  # seconds one ingest may take before the benchmark gives up
COPY_CHUNK = 1 << 20  # bytes per COPY write
STAGES = ("stage_rows", "validate_and_upsert")  # the worker's `ingest_csv <stage>` spans

console = Console(highlight=False)


@dataclass
class Figures:
    copy_seconds: list[float] = field(default_factory=list)
    keyed_copy_seconds: list[float] = field(default_factory=list)
    worker_seconds: list[float] = field(default_factory=list)
    stage_seconds: dict[str, list[float]] = field(default_factory=dict)
    compressed_stage_rows: float = 0.0  # stage_rows once more, the upload stored compressed
    peak_mb: float = 0.0


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

    def finished() -> tuple[Any, ...] | None:
        row = conn.execute(query("batch_timing"), {"batch_id": batch_id}).fetchone()
        return row if row and row[0] in ("completed", "failed") else None

    status, seconds, rows = wait_until(f"batch {batch_id} to finish", finished, BATCH_TIMEOUT)
    if status != "completed":
        raise RuntimeError(f"batch {batch_id} failed")
    return float(seconds), int(rows)


def stage_seconds(collector: OtlpCollector, runs: int) -> dict[str, list[float]]:
    """Each stage's time in each run, in order, from the worker's spans (once all arrived)."""
    names = [f"ingest_csv {stage}" for stage in STAGES]
    spans = collector.wait_for_spans(
        lambda spans: all(sum(s.name == name for s in spans) >= runs for name in names)
    )
    spans.sort(key=lambda span: span.start_time_unix_nano)
    return {
        stage: [span.seconds for span in spans if span.name == f"ingest_csv {stage}"][:runs]
        for stage in STAGES
    }


def compressed_stage_rows(
    conn: psycopg.Connection[Any], collector: OtlpCollector, csv_path: Path, runs: int
) -> float:
    """stage_rows of one more run with the upload stored compressed (as before 0007)."""
    conn.execute(query("compress_uploads"))
    worker_seconds(conn, csv_path)
    return stage_seconds(collector, runs + 1)["stage_rows"][runs]


def peak_megabytes(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MB; 0 where /proc does not say."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_benchmark(rows: int, repeat: int) -> int:
    """Print rows/s for raw COPY and the worker, their ratios and the worker's stages."""
    server = start_embedded()
    workdir = Path(tempfile.mkdtemp(prefix="dragonfly-bench-"))
    collector = OtlpCollector()
    telemetry = {
        "WORKER_POLL_INTERVAL": "0.05",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    stack = ReferenceStack(server.conninfo, workdir / "logs", extra_env=telemetry)
    try:
        apply_migrations(server.conninfo)
        csv_path = write_simplicity_csv(workdir / "bench.csv", rows)
        size_mb = csv_path.stat().st_size / 1e6
        console.print(f"{rows:,} rows, {size_mb:.1f} MB; {server.description}")
        worker = stack.start_worker("ingest")
        figures = Figures()
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            for _ in range(repeat):  # interleaved, so drift hits both alike
                figures.copy_seconds.append(raw_copy_seconds(conn, csv_path))
                figures.keyed_copy_seconds.append(raw_copy_seconds(conn, csv_path, "keyed"))
                seconds, ingested = worker_seconds(conn, csv_path)
                figures.worker_seconds.append(seconds)
                if ingested != rows:
                    raise RuntimeError(f"the worker saw {ingested} rows, expected {rows}")
            figures.peak_mb = peak_megabytes(worker.process.pid)
            figures.stage_seconds = stage_seconds(collector, repeat)
            figures.compressed_stage_rows = compressed_stage_rows(conn, collector, csv_path, repeat)
        return _report(rows, size_mb, figures)
    finally:
        stack.stop()
        server.stop()
        collector.close()


def _rate(rows: int, seconds: list[float]) -> float:
    return rows / statistics.median(seconds)


def _report(rows: int, size_mb: float, figures: Figures) -> int:
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
    stages = Table(title="the worker's stages (from its spans), median seconds")
    for column in ("stage", "runs (s)", "median (s)", "share of the worker's time"):
        stages.add_column(column)
    total = statistics.median(figures.worker_seconds)
    for stage, seconds in figures.stage_seconds.items():
        median = statistics.median(seconds)
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        stages.add_row(f"ingest_csv {stage}", runs, f"{median:.2f}", f"{median / total:.0%}")
    console.print(stages)
    console.print(
        "ingest_csv stage_rows with the upload stored compressed (as before migration 0007): "
        f"{figures.compressed_stage_rows:.2f} s, against "
        f"{statistics.median(figures.stage_seconds['stage_rows']):.2f} s uncompressed"
    )
    ratio = worker_rate / _rate(rows, figures.keyed_copy_seconds)
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    console.print(
        f"worker / keyed COPY: {ratio:.2f} ({verdict} the target of {TARGET_RATIO}); "
        f"worker peak memory {figures.peak_mb:.0f} MB for a {size_mb:.1f} MB file "
        f"(target < {TARGET_PEAK_MB} MB)"
    )
    return 0
