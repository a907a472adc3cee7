"""`dragonfly-harness migrate`: apply the pending migrations to a database, or list them.

Exit codes: 0 done (or nothing to do), 1 a migration failed or the history was refused (the
message names the fix), 2 no usable database URL, 3 the database could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import psycopg
from psycopg.conninfo import conninfo_to_dict

from harness.postgres.external import masked
from harness.targets import DB_URL_ENV, MODE_ENV, TargetError, resolve_target
from reference.db import (
    Migration,
    MigrationError,
    MigrationSettings,
    apply_migrations,
    pending_migrations,
)
from reference.masking import masker

FALLBACK_ENV = "DATABASE_URL"  # what `up` and the services read, after the target variables
EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
DEFAULTS = MigrationSettings()


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-url",
        help=f"the database to migrate; the direct URL, not a transaction pooler's (default: "
        f"${DB_URL_ENV}, else $SUPABASE_DB_URL_<MODE>, else ${FALLBACK_ENV})",
    )
    parser.add_argument("--mode", help=f"dev or prod (default: ${MODE_ENV} or dev)")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the pending migrations; change nothing"
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULTS.lock_timeout,
        metavar="SECONDS",
        help="how long one migration may wait for a lock (traffic queues behind it meanwhile) "
        f"before it gives up and is retried (default {DEFAULTS.lock_timeout:g})",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=DEFAULTS.attempts,
        help=f"tries of a migration that timed out on a lock (default {DEFAULTS.attempts})",
    )
    parser.add_argument(
        "--statement-timeout",
        type=float,
        default=DEFAULTS.statement_timeout,
        metavar="SECONDS",
        help="longest statement of a transactional migration "
        f"(default {DEFAULTS.statement_timeout:g})",
    )


def _kind(migration: Migration) -> str:
    return "in its own transaction" if migration.transactional else "no transaction"


def run_migrate(args: argparse.Namespace) -> int:
    try:
        target = resolve_target({"db_url": args.db_url, "mode": args.mode})
    except TargetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    url = target.db_url_value() or os.environ.get(FALLBACK_ENV, "").strip()
    if not url:
        print(
            f"error: no database to migrate: pass --db-url or set {DB_URL_ENV} "
            f"(or SUPABASE_DB_URL_<MODE>, or {FALLBACK_ENV})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    hide = masker([*target.secrets(), url, *_password(url)])

    print(f"database: {masked(url)} (mode {target.mode.value})")
    try:
        settings = MigrationSettings(
            lock_timeout=args.lock_timeout,
            statement_timeout=args.statement_timeout,
            attempts=args.attempts,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _dry_run(url) if args.dry_run else _migrate(url, settings, hide)
    except MigrationError as error:
        print(f"error: {hide(str(error))}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.OperationalError as error:
        print(f"error: cannot reach {masked(url)}: {hide(str(error)).strip()}", file=sys.stderr)
        return EXIT_UNREACHABLE


def _dry_run(url: str) -> int:
    pending = pending_migrations(url)
    for migration in pending:
        print(f"would apply {migration.label} ({_kind(migration)})")
    print(f"dry run: {len(pending)} pending migration(s); nothing was changed")
    return 0


def _password(url: str) -> list[str]:
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        return []
    return [str(password)] if password else []


def _migrate(url: str, settings: MigrationSettings, hide: Callable[[str], str]) -> int:
    started = time.monotonic()

    def applied(migration: Migration, seconds: float) -> None:
        print(f"applied {migration.label} ({_kind(migration)}) in {seconds:.2f} s", flush=True)

    def waiting(message: str) -> None:
        print(f"waiting: {hide(message)}", flush=True)

    done = apply_migrations(url, settings=settings, on_applied=applied, on_wait=waiting)
    took = time.monotonic() - started
    print(f"{len(done)} migration(s) applied in {took:.2f} s; the database is up to date")
    return 0
