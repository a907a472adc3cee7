"""The `dragonfly-harness` command: run the stack (and its demo), build the offline image."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.postgres.sources import PostgresSource
from harness.schema.migrate_command import add_migrate_arguments, run_migrate
from harness.stack.demo import DEMO_CSV
from harness.stack.runner import UpOptions, run_up
from harness.targets import add_target_arguments

# smoke and loadtests build on the harness: they are imported where their command needs them.


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0 picks a free one)")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dragonfly-harness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up", help="Postgres (embedded by default), migrations, API and both workers; Ctrl-C stops"
    )
    up.add_argument(
        "--pg-source",
        type=PostgresSource,
        choices=list(PostgresSource),
        help="where Postgres comes from (default: external if DATABASE_URL is set, else embedded)",
    )
    up.add_argument("--pg-url", help="external Postgres URL (default: $DATABASE_URL)")
    up.add_argument("--pg-image", help="image for --pg-source container (default postgres:18)")
    up.add_argument("--pg-data-root", type=Path, help="folder for the embedded server's data")
    up.add_argument(
        "--port",
        type=_port,
        default=_port(os.environ.get("PORT", "8888")),
        help="API port (default: $PORT or 8888; 0 picks a free one)",
    )
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the API listens on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".dragonfly"),
        help="where the database URL, API key and service logs are written (default .dragonfly)",
    )
    up.add_argument("--exit-after", type=float, metavar="SECONDS", help="stop after SECONDS")
    up.add_argument("--demo", action="store_true", help="upload a fixture CSV and follow it")
    up.add_argument("--demo-csv", type=Path, default=DEMO_CSV, help="the CSV the demo uploads")
    up.add_argument("--keep-running", action="store_true", help="after the demo, keep running")
    bench = commands.add_parser(
        "bench-ingest", help="time the Ingest Processor against a raw COPY of the same CSV"
    )
    bench.add_argument("--rows", type=int, default=100_000, help="rows in the generated CSV")
    bench.add_argument("--repeat", type=int, default=3, help="interleaved runs of each path")
    _add_load_commands(commands)
    add_migrate_arguments(
        commands.add_parser(
            "migrate", help="apply the pending migrations to a database (--dry-run lists them)"
        )
    )
    image = commands.add_parser(
        "build-pg-image", help="build the local Postgres image offline (no registry needed)"
    )
    image.add_argument("--tag", help="image tag (default: dragonfly-harness/postgres:18-local)")
    from smoke.options import add_smoke_arguments  # noqa: PLC0415 - smoke builds on the harness

    add_smoke_arguments(
        commands.add_parser("smoke", help="the smoke suite (python -m smoke): pass/fail table")
    )
    return parser


def _add_load_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`load` (Locust against the queue's claim path) and `bench-claim` (the claim benchmark)."""
    load = commands.add_parser(
        "load", help="Locust load test of the claim path: seed, run headless, audit, report"
    )
    from loadtests.arguments import add_load_arguments  # noqa: PLC0415 - see the top

    add_load_arguments(load)
    add_target_arguments(load.add_argument_group("target (default: the local reference stack)"))
    bench = commands.add_parser(
        "bench-claim", help="claims/s against concurrency and table size, beside the peer queues"
    )
    from harness.bench.claim import add_bench_claim_arguments  # noqa: PLC0415 - as load's

    add_bench_claim_arguments(bench)


def run_build_image(tag: str | None) -> int:
    from harness.postgres import image  # noqa: PLC0415 - docker is needed only here

    try:
        built = image.build_local_postgres_image(tag or image.DEFAULT_LOCAL_IMAGE)
    except image.ImageBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(built)
    return 0


def _run_load(args: argparse.Namespace) -> int:
    from loadtests.run import run_load  # noqa: PLC0415 - Locust itself runs as its own process

    return run_load(args)


def _run_bench_claim(args: argparse.Namespace) -> int:
    from harness.bench.claim import run_bench_claim  # noqa: PLC0415 - it drives loadtests' users

    return run_bench_claim(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "build-pg-image":
        return run_build_image(args.tag)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "migrate": run_migrate,
        "load": _run_load,
        "bench-claim": _run_bench_claim,
    }
    if args.command in handlers:
        return handlers[args.command](args)
    if args.command == "smoke":
        from smoke.cli import run as run_smoke  # noqa: PLC0415

        return run_smoke(args)
    if args.command == "bench-ingest":
        from harness.bench.ingest import run_benchmark  # noqa: PLC0415

        return run_benchmark(args.rows, args.repeat)
    options = UpOptions(
        pg_source=args.pg_source,
        pg_url=args.pg_url,
        pg_image=args.pg_image,
        pg_data_root=args.pg_data_root,
        port=args.port,
        host=args.host,
        state_dir=args.state_dir,
        exit_after=args.exit_after,
        demo=args.demo,
        demo_csv=args.demo_csv,
        keep_running=args.keep_running,
    )
    return run_up(options)


if __name__ == "__main__":
    sys.exit(main())
