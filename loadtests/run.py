"""`dragonfly-harness load`: seed, run Locust headless (optionally distributed), audit, report.

Against the local reference stack it starts on embedded Postgres by default, or against a named
target (SPEC §5), which needs --allow-writes: the run enqueues load_probe jobs and writes its
records into the schema dragonfly_load.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from harness.network import free_port
from harness.postgres.server import PostgresSourceError
from harness.postgres.sources import PostgresSource, open_server
from harness.stack.local import local_stack
from harness.stack.processes import service_environment
from harness.targets import Target, TargetError, resolve_target
from harness.waiting import WaitTimeoutError, wait_until
from loadtests.arguments import SCENARIOS
from loadtests.audit import (
    audit_run,
    create_audit_tables,
    flushed_processes,
    operation_latency,
    seed_jobs,
)
from loadtests.judgments import ensure_judgments
from loadtests.locust_processes import LocustRun, running_locust
from loadtests.options import API_KEY_ENV, DB_URL_ENV
from loadtests.summary import Thresholds, build_summary, print_summary, read_locust_stats
from reference.db import MigrationError, apply_migrations
from reference.pooling import connect_kwargs

HTTP_USERS = {"EnqueueUser", "IntakeUser"}
EXIT_PASSED, EXIT_FAILED, EXIT_SETUP = 0, 1, 2
RECORDS_WAIT = 60.0  # seconds for every Locust process (remote workers too) to write its records


@dataclass(frozen=True)
class Endpoints:
    """Where the run goes: the database (always) and the API (for the HTTP users)."""

    db_url: str
    api_url: str | None
    api_key: str | None


def _print(line: str) -> None:
    print(line, flush=True)


@contextmanager
def local_endpoints(out_dir: Path, needs_api: bool) -> Iterator[Endpoints]:
    """The reference stack on embedded Postgres: only the database for claim-only runs."""
    if needs_api:
        with local_stack(out_dir / "services") as stack:
            yield Endpoints(stack.database_url, stack.api_url, stack.api_key)
        return
    server = open_server(PostgresSource.EMBEDDED)
    try:
        apply_migrations(server.conninfo)
        yield Endpoints(server.conninfo, None, None)
    finally:
        server.stop()


def named_endpoints(target: Target, needs_api: bool) -> Endpoints:
    target.require_writes("the load test (load_probe jobs, claims, its dragonfly_load records)")
    db_url = target.db_url_value()
    if not db_url:
        raise TargetError(
            "the load test claims through the queue's SQL functions and needs the database: "
            "pass --db-url or set DRAGONFLY_TARGET_DB_URL"
        )
    if needs_api and not target.api_url:
        raise TargetError("EnqueueUser and IntakeUser need the API: pass --api-url")
    return Endpoints(db_url, target.api_url, target.api_key_value())


def run_load(args: argparse.Namespace) -> int:
    """The `load` command; SIGINT or SIGTERM stops it with every process it started."""
    try:
        with _sigterm_interrupts():
            return _load(args)
    except KeyboardInterrupt as interruption:
        signum = interruption.args[0] if interruption.args else signal.SIGINT
        print(f"load: {signal.Signals(signum).name}: stopped", file=sys.stderr)
        return 128 + signum


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM unwind like Ctrl-C: Python's default SIGTERM ends the process
    without running a single `finally`, and Locust and Postgres would outlive it."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signum)

    if threading.current_thread() is not threading.main_thread():  # signals reach only main
        yield
        return
    # SIGINT too: a process started in the background of a non-interactive shell (or by a
    # runner such as tox run-parallel) inherits SIGINT ignored, and Ctrl-C would do nothing.
    previous = {signum: signal.signal(signum, interrupt) for signum in INTERRUPTS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _load(args: argparse.Namespace) -> int:
    run_id = f"load-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    out_dir: Path = args.out or Path(".dragonfly") / "load" / run_id
    user_classes = SCENARIOS[args.scenario]
    needs_api = bool(HTTP_USERS.intersection(user_classes))
    try:
        target = resolve_target(vars(args))
        if target.is_local:
            _print(f"load: starting {target.describe()} (run {run_id})")
            endpoints_context = local_endpoints(out_dir, needs_api)
        else:
            endpoints = named_endpoints(target, needs_api)
            if warning := target.write_warning():
                _print(warning)
            _print(f"load: target {target.describe()} (run {run_id})")
            endpoints_context = _given(endpoints)
        with endpoints_context as endpoints:
            return _run(
                args,
                run_id=run_id,
                out_dir=out_dir,
                user_classes=user_classes,
                endpoints=endpoints,
                target=target,
            )
    except (
        TargetError,
        PostgresSourceError,
        MigrationError,
        RuntimeError,
        WaitTimeoutError,
    ) as error:
        print(f"error: {target_mask(args, str(error))}", file=sys.stderr)
        return EXIT_SETUP
    except psycopg.Error as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: the database refused the load run: {target_mask(args, message)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_SETUP


def target_mask(args: argparse.Namespace, text: str) -> str:
    try:
        return resolve_target(vars(args)).mask(text)
    except TargetError:
        return text


def wait_for_records(
    conn: psycopg.Connection[Any], run_id: str, processes: int, timeout: float
) -> None:
    """Until `processes` Locust processes wrote their records (remote ones may lag the master)."""
    with suppress(WaitTimeoutError):  # the audit reports the missing processes
        wait_until(
            f"{processes} Locust process(es) to write their records",
            lambda: flushed_processes(conn, run_id) >= processes,
            timeout,
            0.25,
        )


@contextmanager
def _given(endpoints: Endpoints) -> Iterator[Endpoints]:
    yield endpoints


def _run(
    args: argparse.Namespace,
    *,
    run_id: str,
    out_dir: Path,
    user_classes: tuple[str, ...],
    endpoints: Endpoints,
    target: Target,
) -> int:
    with psycopg.connect(
        endpoints.db_url, autocommit=True, **connect_kwargs(endpoints.db_url)
    ) as conn:
        create_audit_tables(conn)
        seeded = seed_jobs(conn, run_id, args.seed_jobs) if "ClaimUser" in user_classes else 0
    _print(f"load: seeded {seeded:,} load_probe jobs; reports in {out_dir}")
    if "EnqueueUser" in user_classes and endpoints.api_url:
        ingested = ensure_judgments(endpoints.db_url, endpoints.api_url, endpoints.api_key)
        if ingested:
            _print(f"load: ingested {ingested:,} judgments for EnqueueUser")
    options = ["--run-id", run_id, "--claim-batch-size", str(args.claim_batch_size)]
    if seeded:
        options.append("--stop-when-drained")
    run = LocustRun(
        user_classes=user_classes,
        users=args.users,
        spawn_rate=args.spawn_rate or float(args.users),
        run_time_s=args.run_time,
        out_dir=out_dir,
        custom_options=tuple(options),
        host=endpoints.api_url,
        local_workers=args.workers,
        remote_workers=args.remote_workers,
        master_bind_host=args.master_bind_host,
        master_port=args.master_port or free_port(),
    )
    env = service_environment({DB_URL_ENV: endpoints.db_url})
    if endpoints.api_key:
        env[API_KEY_ENV] = endpoints.api_key
    with running_locust(run, env) as locust:
        code = locust.wait(_print)
    processes = (args.workers + args.remote_workers) or 1
    with psycopg.connect(
        endpoints.db_url, autocommit=True, **connect_kwargs(endpoints.db_url)
    ) as conn:
        wait_for_records(conn, run_id, processes, RECORDS_WAIT if code == 0 else 2.0)
        audit = audit_run(conn, run_id, processes)
        latency = operation_latency(conn, run_id)
    thresholds = Thresholds(args.min_claims_per_s, args.max_p99_ms, args.max_error_rate)
    run_info = {
        "id": run_id,
        "target": target.describe(),
        "scenario": args.scenario,
        "users": args.users,
        "local_workers": args.workers,
        "remote_workers": args.remote_workers,
        "claim_batch_size": args.claim_batch_size,
        "seeded_jobs": seeded,
        "locust_exit_code": code,
        "reports": {
            "html": str(run.html_path),
            "csv_prefix": str(run.csv_prefix),
            "locust_json": str(run.json_path),
        },
    }
    summary = build_summary(
        run=run_info,
        entries=read_locust_stats(run.json_path),
        latency=latency,
        audit=audit,
        thresholds=thresholds,
    )
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print_summary(summary, summary_path, _print)
    return EXIT_PASSED if summary["passed"] else EXIT_FAILED
