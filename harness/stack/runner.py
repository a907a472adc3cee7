"""`dragonfly-harness up`: Postgres, migrations, the API and both workers, logs streamed."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from harness.postgres.external import masked
from harness.postgres.logins import ServiceLogins, close_service_logins, open_service_logins
from harness.postgres.server import PostgresServer, PostgresSourceError
from harness.postgres.sources import PostgresSource, open_server
from harness.secret_files import write_secret
from harness.stack.demo import DemoError, DemoResult, run_demo
from harness.stack.logtail import LogTail
from harness.stack.processes import ReferenceStack
from reference.db import MigrationError, apply_migrations
from reference.pooling import PREPARED_STATEMENTS_ENV, PreparedStatements

console = Console(highlight=False)


@dataclass
class UpOptions:
    pg_source: PostgresSource | None
    pg_url: str | None
    pg_image: str | None
    pg_data_root: Path | None
    port: int
    host: str
    state_dir: Path
    exit_after: float | None
    demo: bool
    demo_csv: Path
    keep_running: bool


def _open(options: UpOptions) -> PostgresServer:
    url = options.pg_url or os.environ.get("DATABASE_URL") or None
    source = options.pg_source or (PostgresSource.EXTERNAL if url else PostgresSource.EMBEDDED)
    return open_server(source, url=url, image=options.pg_image, data_root=options.pg_data_root)


def _wait_for_stop(exit_after: float | None) -> None:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        console.print(f"\n{signal.Signals(signum).name} received: stopping")
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop.wait(exit_after)


def _print_where(stack: ReferenceStack, server: PostgresServer, options: UpOptions) -> None:
    table = Table(title="dragonfly-harness up", show_header=False)
    table.add_row("postgres", server.description)
    table.add_row(
        "database URL", f"{masked(server.conninfo)} (full URL in {options.state_dir}/database-url)"
    )
    table.add_row("API", f"{stack.api_url}  (docs: {stack.api_url}/docs)")
    table.add_row("API key", f"in {options.state_dir}/api-key (header X-DRAGONFLY-API-KEY)")
    for name, service in stack.services.items():
        table.add_row(name, f"pid {service.process.pid}, logs {service.stderr_path}")
    console.print(table)


def _print_demo(result: DemoResult) -> None:
    table = Table(title="demo summary", show_header=False)
    batch = result.batch
    table.add_row("batch", f"{batch['batch_id']} {batch['status']}")
    counts = f"{batch['total_rows']} total, {batch['valid_rows']} valid"
    table.add_row("rows", f"{counts}, {batch['invalid_rows']} invalid")
    for strategy, count in result.strategies.items():
        table.add_row(f"plans: {strategy}", str(count))
    table.add_row("draft packets", f"{result.packets} (fees {result.total_fees})")
    table.add_row("jobs", ", ".join(f"{n} {s}" for s, n in result.jobs_by_status.items()))
    console.print(table)


def run_up(options: UpOptions) -> int:
    """Start everything, wait for Ctrl-C (or the demo, or --exit-after), stop everything."""
    try:
        server = _open(options)
    except PostgresSourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    tail = LogTail()
    stack: ReferenceStack | None = None
    logins: ServiceLogins | None = None
    try:
        # Migrations over the direct connection; behind the pooler source (`--pg-source pooler`)
        # the services, the demo and their children use no prepared statements (unless the
        # user's own DATABASE_PREPARED_STATEMENTS says otherwise).
        applied = apply_migrations(server.admin_conninfo)
        if server.pooled:
            os.environ.setdefault(PREPARED_STATEMENTS_ENV, PreparedStatements.OFF.value)
        console.print(f"migrations: {len(applied)} applied now")
        # The services connect as least-privileged login users (dragonfly_api/_worker members).
        logins = open_service_logins(server.conninfo)
        api_key = os.environ.get("DRAGONFLY_API_KEY") or secrets.token_urlsafe(24)
        write_secret(options.state_dir / "database-url", server.url + "\n")
        write_secret(options.state_dir / "api-key", api_key + "\n")
        stack = ReferenceStack(server.url, options.state_dir / "logs", api_key=api_key)
        stack.service_urls = logins.urls(server.url) if logins else {}
        for name in ("api", "ingest", "enforcement"):
            for stream in ("stdout", "stderr"):
                log = stack.log_dir / f"{name}.{stream}"
                log.unlink(missing_ok=True)  # an earlier run's lines are not this run's
                tail.follow(log, name)
        tail.start()
        stack.start_api(options.port or None, options.host)
        stack.start_worker("ingest")
        stack.start_worker("enforcement")
        _print_where(stack, server, options)
        if options.demo:
            _print_demo(run_demo(stack, options.demo_csv))
        if not options.demo or options.keep_running:
            console.print("ready: press Ctrl-C to stop")
            _wait_for_stop(options.exit_after)
    except (MigrationError, DemoError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        codes = stack.stop() if stack else {}
        tail.stop()
        close_service_logins(server.conninfo, logins)
        server.stop()
    console.print(f"stopped ({', '.join(f'{n} exited {c}' for n, c in codes.items())})")
    return 0 if all(code == 0 for code in codes.values()) else 1
