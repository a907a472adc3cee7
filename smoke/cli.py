"""`python -m smoke` / `dragonfly-harness smoke`: one pass/fail table before and after a deploy.

Exit codes: 0 every check passed (a skipped check says why it had nothing to check), 1 a check
failed, 2 the suite could not run (bad flags or configuration; the reason is printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import trace
from pydantic import SecretStr

from harness.postgres.server import PostgresSourceError
from harness.stack.local import local_stack
from harness.targets import Mode, Target, TargetError, resolve_target
from reference.db import MigrationError
from reference.masking import masker
from smoke import report
from smoke.checks import all_checks
from smoke.context import SmokeContext
from smoke.options import DEFAULT_DEADLINE, add_smoke_arguments, thresholds_from
from smoke.runner import CheckResult, Status, run_checks
from smoke.telemetry import TelemetryConfigError, configure_tracing

EXIT_PASSED, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
tracer = trace.get_tracer(__name__)


class CannotRunError(Exception):
    """The suite cannot run at all; the message says why and how to fix it."""


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="python -m smoke", description=__doc__)
    add_smoke_arguments(command)
    return command


def _context(target: Target, args: argparse.Namespace, env: Mapping[str, str]) -> SmokeContext:
    return SmokeContext(
        mode=target.mode,
        is_local=target.is_local,
        env=env,
        api_url=target.api_url,
        db_url=target.db_url_value(),
        supabase_url=target.supabase_url,
        supabase_key=target.supabase_key_value(),
        dashboard_url=target.dashboard_url,
        api_key=target.api_key_value(),
        mask=masker(target.secrets()),
        thresholds=thresholds_from(args),
        may_write=target.may_write,
        canary=args.canary or args.canary_csv,
        canary_csv=args.canary_csv,
        run_id=uuid.uuid4().hex[:12],
    )


def _target(args: argparse.Namespace, env: Mapping[str, str]) -> Target:
    try:
        target = resolve_target(vars(args), env)
        if args.canary or args.canary_csv:
            target.require_writes("the canary (--canary)")
    except TargetError as error:
        raise CannotRunError(str(error)) from None
    if target.is_local and target.mode is Mode.PROD:
        raise CannotRunError(
            "mode prod names no target: set SUPABASE_URL_PROD, SUPABASE_SERVICE_ROLE_KEY_PROD, "
            "SUPABASE_DB_URL_PROD and DRAGONFLY_TARGET_API_URL (or the --api-url/--db-url "
            "options); without SUPABASE_MODE=prod the suite checks a local stack it starts"
        )
    return target


@contextmanager
def _stack_for(context: SmokeContext) -> Iterator[Path | None]:
    """For a local target: start the stack and point `context` at it; yields its log folder."""
    if not context.is_local:
        yield None
        return
    print(
        "starting the local reference stack (embedded Postgres, API, both workers)...",
        file=sys.stderr,
    )
    logs = Path(tempfile.mkdtemp(prefix="dragonfly-smoke-"))
    try:
        with local_stack(logs) as stack:
            context.api_url, context.db_url = stack.api_url, stack.database_url
            context.api_key = stack.api_key
            secrets = Target(db_url=SecretStr(stack.database_url), api_key=SecretStr(stack.api_key))
            context.mask = masker(secrets.secrets())
            yield logs
    except (PostgresSourceError, MigrationError, RuntimeError) as error:
        raise CannotRunError(f"could not start the local reference stack: {error}") from None


def _emit(
    args: argparse.Namespace, results: list[CheckResult], seconds: float, target: str, code: int
) -> None:
    if args.json == "-":
        print(report.as_json(results, seconds, target, code))
    else:
        print(report.table(results, seconds, target))
        if args.json:
            Path(args.json).write_text(report.as_json(results, seconds, target, code) + "\n")
    if args.junit:
        report.write_junit(args.junit, results, seconds, target)


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """Run the suite for parsed arguments; the exit code."""
    env = os.environ if env is None else env
    try:
        target = _target(args, env)
        provider = configure_tracing(env, target.mode.value)
    except (CannotRunError, TelemetryConfigError) as error:
        print(f"smoke: cannot run: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if warning := target.write_warning():
        print(warning, file=sys.stderr)
    context = _context(target, args, env)
    checks = all_checks(args.check_timeout, context.thresholds.canary_timeout)
    deadline = args.deadline or DEFAULT_DEADLINE + (checks[-1].timeout if context.canary else 0)
    started = time.monotonic()
    try:
        with (
            _stack_for(context) as logs,
            tracer.start_as_current_span(
                "smoke run",
                attributes={"smoke.target": target.describe(), "smoke.mode": target.mode.value},
            ) as span,
        ):
            results = run_checks(checks, context, deadline, context.mask)
            failed = [r.name for r in results if r.status is Status.FAILED]
            span.set_attribute("smoke.failed", failed)
            code = EXIT_FAILED if failed else EXIT_PASSED
            if logs is not None and failed:
                print(f"the local stack's logs are kept in {logs}", file=sys.stderr)
        if logs is not None and not failed:
            shutil.rmtree(logs, ignore_errors=True)
    except CannotRunError as error:
        print(f"smoke: cannot run: {context.mask(str(error))}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    finally:
        provider.shutdown()
    _emit(args, results, time.monotonic() - started, target.describe(), code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(argv))
