"""The runner: a check's teardown runs however the check ended, on a budget of its own."""

from __future__ import annotations

import threading

from smoke.runner import Check, CheckFailedError, Status, run_checks


def test_a_teardown_runs_after_a_check_that_timed_out_and_its_note_is_shown() -> None:
    hung = threading.Event()
    torn_down: list[str] = []

    def hang(context: object) -> str:
        hung.wait(30)  # never answers within its timeout
        return "too late"

    def teardown(context: object) -> str:
        torn_down.append("yes")
        return "removed 1 smoke_canary job"

    check = Check("canary", 0.2, hang, teardown)
    try:
        (result,) = run_checks([check], None, deadline=10, mask=str)
    finally:
        hung.set()
    assert torn_down == ["yes"]
    assert result.status is Status.FAILED
    assert result.detail == "timed out after 0.2s (no answer); removed 1 smoke_canary job"


def test_a_failing_teardown_fails_a_passing_check() -> None:
    def teardown(context: object) -> str:
        raise CheckFailedError("cleanup failed (connection refused)")

    (result,) = run_checks([Check("canary", 5, lambda c: "ok", teardown)], None, 10, str)
    assert result.status is Status.FAILED
    assert result.detail == "ok; cleanup failed (connection refused)"


def test_a_teardown_runs_even_when_the_deadline_left_no_time_for_the_check() -> None:
    torn_down: list[str] = []

    def slow(context: object) -> str:
        threading.Event().wait(1)
        return "slow"

    def teardown(context: object) -> None:
        torn_down.append("x")

    checks = [Check("slow", 0.3, slow), Check("canary", 5, lambda c: "never runs", teardown)]
    results = run_checks(checks, None, deadline=0.2, mask=str)
    assert [r.status for r in results] == [Status.FAILED, Status.FAILED]
    assert "budget (--deadline) was used up" in results[1].detail
    assert torn_down == ["x"]
