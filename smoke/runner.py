"""Run named checks one after another, each bounded by its timeout and the run's deadline.

A check is a function that returns a one-line detail when it passes, raises CheckFailedError when
it fails and CheckSkippedError when there is nothing for it to check (its reason is shown). Every
check gets a span; a check that hangs is abandoned (its thread is a daemon) once its time is up.
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
            if remaining <= 0:
                status, detail = (
                    Status.FAILED,
                    f"cannot run: the run's {deadline:.0f}s budget (--deadline) was used up",
                )
            else:
                status, detail = _attempt(check, context, min(check.timeout, remaining))
            detail = mask(" ".join(detail.split()))
            seconds = time.monotonic() - started
            span.set_attribute("smoke.check.status", status.value)
            span.set_attribute("smoke.check.detail", detail)
            if status is Status.FAILED:
                span.set_status(SpanStatus(StatusCode.ERROR, detail[:200]))
        results.append(CheckResult(check.name, status, seconds, detail))
    return results
