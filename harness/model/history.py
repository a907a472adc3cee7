"""A history of concurrent queue calls and a checker that holds it to the queue's rules.

Threads record every call with its result and its start and end time. The checker then
looks, job by job, for an order of that job's calls that respects real time (a call that
ended before another started comes first) and under which the queue's rules give every
recorded result: a claim needs a pending job and returns attempts + 1, complete / fail /
extend succeed only for the lease holder, a reap takes only a processing job and
dead-letters it when its attempts are used up, terminal states are final. No such order
means two live leases, a lost update, an unfenced call or a reopened job. It also checks
what needs no order: attempts within max_attempts, reaps only of leases older than the
timeout, and, after a drain, every enqueued job in exactly one terminal state.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

MAX_CALLS_PER_JOB = 40  # beyond this the order search could explode; the run keeps far below


@dataclass(frozen=True)
class JobCall:
    """One call's effect on one job, as its result showed it."""

    operation: str  # claim | complete | fail | extend | reap | effect | handler_error
    worker: str
    # claim: attempts; complete/extend: True/False; fail: outcome; reap: status;
    # effect (a handler's fenced commit): True committed / False refused; handler_error: SQLSTATE
    result: str
    started: int  # time.monotonic_ns()
    ended: int
    db_time: datetime | None = None  # claim: locked_at; reap: ops.clock() just after it
    lock_timeout: timedelta | None = None  # reap only


@dataclass
class History:
    """Calls recorded from many threads; thread-safe appends."""

    calls: dict[UUID, list[JobCall]] = field(default_factory=lambda: defaultdict(list))
    enqueued: dict[UUID, int] = field(default_factory=dict)  # job -> max_attempts
    requested: dict[UUID, set[int]] = field(default_factory=dict)  # job -> limits asked for
    operations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_enqueue(self, job_id: UUID, max_attempts: int) -> None:
        with self._lock:
            self.operations += 1
            self.enqueued.setdefault(job_id, max_attempts)
            self.requested.setdefault(job_id, set()).add(max_attempts)

    def settle_limits(self, stored: dict[UUID, int]) -> list[str]:
        """Each job's limit as the queue stored it, when some enqueue asked for it.

        Two enqueues with one idempotency key get one job; the one that created it may record
        after the other, so the first recorded limit need not be the job's. A stored limit that
        no enqueue asked for is a problem of its own.
        """
        problems = []
        for job_id, limit in stored.items():
            if job_id not in self.requested:
                continue
            if limit in self.requested[job_id]:
                self.enqueued[job_id] = limit
            else:
                asked = sorted(self.requested[job_id])
                problems.append(f"job {job_id}: max_attempts stored {limit}, asked for {asked}")
        return problems

    def record(self, job_calls: Iterable[tuple[UUID, JobCall]]) -> None:
        """One operation and its effect on each job it touched (none for an empty claim)."""
        with self._lock:
            self.operations += 1
            for job_id, call in job_calls:
                self.calls[job_id].append(call)


def now_ns() -> int:
    return time.monotonic_ns()


@dataclass(frozen=True)
class _State:
    status: str = "pending"
    owner: str | None = None
    attempts: int = 0


def _step(state: _State, call: JobCall, max_attempts: int) -> _State | None:  # noqa: PLR0911 - one return per rule
    """The state after `call`, or None when its recorded result is impossible from `state`."""
    held = state.status == "processing" and state.owner == call.worker
    if call.operation == "claim":
        if state.status != "pending" or call.result != str(state.attempts + 1):
            return None
        return _State("processing", call.worker, state.attempts + 1)
    if call.operation in ("complete", "extend"):
        if call.result != str(held):
            return None
        if held and call.operation == "complete":
            return _State("completed", call.worker, state.attempts)
        return state
    if call.operation == "effect":  # committed only while held, refused only when not
        return state if call.result == str(held) else None
    if call.operation == "handler_error":  # the handler's transaction failed: nothing changed
        return state
    used_up = state.attempts >= max_attempts
    if call.operation == "fail":
        if not held:
            return state if call.result == "lease_lost" else None
        expected = "dead_lettered" if used_up else "retry_scheduled"
        if call.result != expected:
            return None
        return _State("failed" if used_up else "pending", None, state.attempts)
    if call.operation == "reap":
        if state.status != "processing" or call.result != ("failed" if used_up else "pending"):
            return None
        return _State(call.result, None, state.attempts)
    raise ValueError(f"unknown operation {call.operation!r} in the history")


def _linearizable(calls: list[JobCall], max_attempts: int) -> bool:
    """Whether some real-time-respecting order of calls gives every recorded result."""
    seen: set[tuple[_State, frozenset[int]]] = set()

    def search(state: _State, remaining: frozenset[int]) -> bool:
        if not remaining:
            return True
        if (state, remaining) in seen:
            return False
        seen.add((state, remaining))
        earliest_end = min(calls[i].ended for i in remaining)
        for index in remaining:
            if calls[index].started > earliest_end:
                continue  # some other remaining call ended before this one began
            after = _step(state, calls[index], max_attempts)
            if after is not None and search(after, remaining - {index}):
                return True
        return False

    return search(_State(), frozenset(range(len(calls))))


def _describe(job_id: UUID, calls: list[JobCall]) -> str:
    ordered = sorted(calls, key=lambda call: call.started)
    steps = ", ".join(f"{c.operation}({c.worker})->{c.result}" for c in ordered)
    return f"job {job_id}: {steps}"


def check_history(history: History, final_rows: Mapping[UUID, tuple[str, int]]) -> list[str]:
    """Every violation of the queue's rules in the history; final_rows: id -> (status, attempts).

    Call it after a drain (every job driven to a terminal state), so `final_rows` must show
    each enqueued job completed or failed.
    """
    problems: list[str] = []
    for job_id, max_attempts in history.enqueued.items():
        calls = history.calls.get(job_id, [])
        problems.extend(f"job {job_id}: {p}" for p in _single_call_problems(calls, max_attempts))
        if len(calls) > MAX_CALLS_PER_JOB:
            problems.append(f"job {job_id}: {len(calls)} calls, more than the checker orders")
        elif not _linearizable(calls, max_attempts):
            problems.append(
                "no order of the calls explains the results: " + _describe(job_id, calls)
            )
        problems.extend(f"job {job_id}: {p}" for p in _final_problems(job_id, calls, final_rows))
    unknown = set(final_rows) - set(history.enqueued)
    if unknown:
        problems.append(f"{len(unknown)} jobs in the table were never enqueued by the run")
    return problems


def _single_call_problems(calls: list[JobCall], max_attempts: int) -> list[str]:
    problems = _failures_not_recorded(calls)
    claims = [c for c in calls if c.operation == "claim"]
    for claim in claims:
        if int(claim.result) > max_attempts:
            problems.append(f"claimed at attempt {claim.result} of max {max_attempts}")
    for reap in (c for c in calls if c.operation == "reap"):
        # The lease began no earlier than the latest claim that ended before the reap began.
        leases = [c.db_time for c in claims if c.ended < reap.started and c.db_time is not None]
        if leases and reap.db_time is not None and reap.lock_timeout is not None:
            age = reap.db_time - max(leases)
            if age <= reap.lock_timeout:
                problems.append(f"reaped a lease {age} old with lock_timeout {reap.lock_timeout}")
    return problems


def _final_problems(
    job_id: UUID, calls: list[JobCall], final_rows: Mapping[UUID, tuple[str, int]]
) -> list[str]:
    if job_id not in final_rows:
        return ["enqueued but missing from the table (lost)"]
    status, attempts = final_rows[job_id]
    problems = []
    claims = sum(c.operation == "claim" for c in calls)
    if attempts != claims:
        problems.append(f"attempts {attempts} but {claims} claims were recorded")
    terminal = [
        c
        for c in calls
        if (c.operation == "complete" and c.result == "True")
        or (c.operation == "fail" and c.result == "dead_lettered")
        or (c.operation == "reap" and c.result == "failed")
    ]
    if status not in ("completed", "failed"):
        problems.append(f"ended {status}, not terminal, after the drain")
    elif len(terminal) != 1:
        problems.append(f"{len(terminal)} terminal transitions recorded (want exactly 1)")
    return problems


def _failures_not_recorded(calls: list[JobCall]) -> list[str]:
    """A handler's database error must be followed by that worker's fail call on the job: a job
    is never resumed (run on, completed) without a recorded failure."""
    problems = []
    by_worker: dict[str, list[JobCall]] = defaultdict(list)
    for call in calls:
        by_worker[call.worker].append(call)
    for worker, own in by_worker.items():
        own.sort(key=lambda call: call.started)
        for call, after in zip(own, [*own[1:], None], strict=True):
            if call.operation == "handler_error" and (after is None or after.operation != "fail"):
                then = after.operation if after is not None else "nothing"
                problems.append(
                    f"{worker} hit SQLSTATE {call.result} and did not record the failure "
                    f"(next: {then})"
                )
    return problems


def check_effects(history: History, committed: Mapping[tuple[UUID, str], int]) -> list[str]:
    """The effects table (job, worker) -> rows against the effects the history says committed;
    the table has no uniqueness constraint, so a duplicate or a refused commit shows."""
    recorded: dict[tuple[UUID, str], int] = defaultdict(int)
    for job_id, calls in history.calls.items():
        for call in calls:
            if call.operation == "effect" and call.result == "True":
                recorded[(job_id, call.worker)] += 1
    problems = []
    for key in sorted(set(recorded) | set(committed), key=str):
        if recorded.get(key, 0) != committed.get(key, 0):
            problems.append(
                f"job {key[0]}: {committed.get(key, 0)} effects of {key[1]} in the table, "
                f"{recorded.get(key, 0)} committed in the history"
            )
    return problems


def run_threads(steppers: list[Callable[[], None]], steps: int) -> None:
    """Each stepper in a thread of its own, `steps` times; the first error raised here."""
    errors: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        try:
            for _ in range(steps):
                step()
        except BaseException as error:  # handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(step,)) for step in steppers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]
