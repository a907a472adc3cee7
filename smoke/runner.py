"""Run named checks one after another, each bounded by its timeout and the run's deadline.

A check is a function that returns a one-line detail when it passes, raises CheckFailedError when
it fails and CheckSkippedError when there is nothing for it to check (its reason is shown). Every
check gets a span; a check that hangs is abandoned (its thread is a daemon) once its time is up.
A check's teardown (the canary's cleanup) runs after it however it ended, timed out or
interrupted included, in the runner's thread and on a budget of its own.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode

C = TypeVar("C")
tracer = trace.get_tracer(__name__)


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class CheckFailedError(Exception):
    """The check ran and found a problem; the message says what and how to fix it."""


class CheckSkippedError(Exception):
    """There is nothing for the check to test (e.g. no dashboard named); the message says why."""


@dataclass(frozen=True)
class Check(Generic[C]):
    name: str
    timeout: float  # seconds
    run: Callable[[C], str]
    # Runs after `run` however it ended; bounds its own time; a note for the detail, or None.
    teardown: Callable[[C], str | None] | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    seconds: float
    detail: str


def _attempt(check: Check[C], context: C, timeout: float) -> tuple[Status, str]:
    outcome: list[tuple[Status, str]] = []

    def target() -> None:
        try:
            outcome.append((Status.PASSED, check.run(context)))
        except CheckFailedError as failure:
            outcome.append((Status.FAILED, str(failure)))
        except CheckSkippedError as skipped:
            outcome.append((Status.SKIPPED, str(skipped)))
        except Exception as error:  # a bug or an unforeseen answer: still one failed row
            outcome.append((Status.FAILED, f"unexpected {type(error).__name__}: {error}"))

    # The check's thread runs in this context, so its spans (e.g. the canary's send) join the run.
    runner = contextvars.copy_context().run
    thread = threading.Thread(
        target=runner, args=(target,), name=f"smoke-{check.name}", daemon=True
    )
    thread.start()
    thread.join(timeout)
    if not outcome:
        return Status.FAILED, f"timed out after {timeout:.1f}s (no answer)"
    return outcome[0]


def _teardown(check: Check[C], context: C) -> tuple[bool, str | None]:
    """(ok, note) of the check's teardown; it never raises, so the run goes on."""
    if check.teardown is None:
        return True, None
    try:
        return True, check.teardown(context)
    except CheckFailedError as failure:
        return False, str(failure)
    except Exception as error:  # a bug or an unforeseen answer: the check fails, saying so
        return False, f"teardown: unexpected {type(error).__name__}: {error}"


def run_checks(
    checks: Sequence[Check[C]],
    context: C,
    deadline: float,
    mask: Callable[[str], str],
) -> list[CheckResult]:
    """Every check in order, none after `deadline` seconds have passed (those fail, saying so)."""
    ends = time.monotonic() + deadline
    results: list[CheckResult] = []
    for check in checks:
        with tracer.start_as_current_span(
            f"smoke {check.name}", attributes={"smoke.check.name": check.name}
        ) as span:
            started = time.monotonic()
            remaining = ends - started
            try:
                if remaining <= 0:
                    status, detail = (
                        Status.FAILED,
                        f"cannot run: the run's {deadline:.0f}s budget (--deadline) was used up",
                    )
                else:
                    status, detail = _attempt(check, context, min(check.timeout, remaining))
            finally:  # also when the run is interrupted (Ctrl-C) while the check runs
                cleaned, note = _teardown(check, context)
            if note:
                detail = f"{detail}; {note}"
            if not cleaned:
                status = Status.FAILED
            detail = mask(" ".join(detail.split()))
            seconds = time.monotonic() - started
            span.set_attribute("smoke.check.status", status.value)
            span.set_attribute("smoke.check.detail", detail)
            if status is Status.FAILED:
                span.set_status(SpanStatus(StatusCode.ERROR, detail[:200]))
        results.append(CheckResult(check.name, status, seconds, detail))
    return results
