"""The `dragonfly-harness` command: run the stack's database, build the offline Postgres image."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from harness.postgres.container import DEFAULT_IMAGE
from harness.postgres.external import masked
from harness.postgres.server import PostgresSourceError
from harness.postgres.sources import PostgresSource, open_server
from reference.db import MigrationError, apply_migrations


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dragonfly-harness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up", help="start Postgres (embedded by default), apply migrations, wait for Ctrl-C"
    )
    up.add_argument(
        "--pg-source",
        type=PostgresSource,
        choices=list(PostgresSource),
        default=PostgresSource.EMBEDDED,
        help="where Postgres comes from (default: embedded)",
    )
    up.add_argument("--pg-url", help="external Postgres URL (with --pg-source external)")
    up.add_argument("--pg-image", default=DEFAULT_IMAGE, help="image for --pg-source container")
    up.add_argument(
        "--pg-data-root", type=Path, help="folder for the embedded server's data (default: temp)"
    )
    up.add_argument(
        "--exit-after",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this many seconds (for scripted checks)",
    )
    image = commands.add_parser(
        "build-pg-image", help="build the local Postgres image offline (no registry needed)"
    )
    image.add_argument("--tag", help="image tag (default: dragonfly-harness/postgres:18-local)")
    return parser


def _wait_for_stop(exit_after: float | None) -> None:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        print(f"\n{signal.Signals(signum).name} received: stopping", flush=True)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop.wait(exit_after)


def run_up(args: argparse.Namespace) -> int:
    try:
        server = open_server(
            args.pg_source, url=args.pg_url, image=args.pg_image, data_root=args.pg_data_root
        )
    except PostgresSourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        applied = apply_migrations(server.conninfo)
        print(f"postgres:   {server.description}")
        # A server the harness started is a local throwaway: show how to connect to it.
        # An external one holds a real password: show only where it is.
        where = masked(server.conninfo) if server.source == "external" else server.conninfo
        print(f"database:   {where}")
        print(f"migrations: {len(applied)} applied now ({', '.join(m.name for m in applied)})")
        print("ready: press Ctrl-C to stop", flush=True)
        _wait_for_stop(args.exit_after)
    except MigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    print("stopped", flush=True)
    return 0


def run_build_image(args: argparse.Namespace) -> int:
    from harness.postgres import image  # noqa: PLC0415 - docker is needed only here

    try:
        tag = image.build_local_postgres_image(args.tag or image.DEFAULT_LOCAL_IMAGE)
    except image.ImageBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(tag)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return run_up(args)
    return run_build_image(args)


if __name__ == "__main__":
    sys.exit(main())
