"""Checks over a database connection: reachability, schema, queue health, workers.

Every statement runs in a read-only transaction of its own (smoke/database.py), so a check
leaves nothing behind on a pooled server connection.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from smoke import schema
from smoke.context import SmokeContext, first_line
from smoke.runner import CheckFailedError

# The heartbeat worker_type of each worker (the workers check wants a live one of each).
WORKER_TYPES = ("ingest_processor", "enforcement_engine")


def _ago(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _jobs(rows: Iterable[tuple[str, str, float]]) -> str:
    return ", ".join(f"{job_type} {job_id} ({_ago(age)})" for job_type, job_id, age in rows)


def check_db_connect(ctx: SmokeContext) -> str:
    """A direct connection with a short connect timeout; later checks reuse its verdict."""
    ctx.db_checked = True
    try:
        with ctx.connect() as db:
            version = db.column("server_version")[0]
    except CheckFailedError as failure:
        ctx.db_error = str(failure).removeprefix("cannot connect: ")
        raise
    except psycopg.Error as error:
        ctx.db_error = first_line(error)
        raise CheckFailedError(f"connected, but a query failed: {ctx.db_error}") from None
    return f"PostgreSQL {version}"


def check_schema(ctx: SmokeContext) -> str:
    """Everything the migrations create (schema_manifest.json), and every migration recorded."""
    expected = schema.load_manifest()
    with ctx.connect() as db:
        found = schema.manifest_of(db)
    lost = schema.missing(expected, found)
    if lost:
        raise CheckFailedError(schema.describe_missing(lost))
    objects = expected["objects"]
    plurals = {"table": "tables", "function": "functions", "view": "views", "index": "indexes"}
    counts = ", ".join(f"{len(objects.get(kind, []))} {plurals[kind]}" for kind in plurals)
    return f"{counts} present; migrations up to {expected['migrations'][-1]} recorded"


def check_queue_health(ctx: SmokeContext) -> str:
    """No stuck lease, no long-waiting due job, few dead letters; offenders listed."""
    limits = ctx.thresholds
    params = {
        "lock_timeout": limits.lock_timeout,
        "dead_letter_window": limits.dead_letter_window,
        "max_pending_age": limits.max_pending_age,
    }
    problems = []
    with ctx.connect() as db:
        stuck, oldest, dead = db.rows("queue_summary", **params)[0]
        if stuck:
            problems.append(
                f"{stuck} stuck (processing, lease older than {_ago(limits.lock_timeout)}): "
                + _jobs(db.rows("stuck_jobs", **params))
            )
        if oldest is not None and float(oldest) > limits.max_pending_age:
            problems.append(
                f"due pending jobs waiting over {_ago(limits.max_pending_age)}: "
                + _jobs(db.rows("old_pending_jobs", **params))
            )
        if dead > limits.max_dead_letters:
            problems.append(
                f"{dead} dead-lettered in the last {_ago(limits.dead_letter_window)} "
                f"(limit {limits.max_dead_letters}): "
                + _jobs(db.rows("recent_dead_letters", **params))
            )
    if problems:
        raise CheckFailedError("; ".join(problems))
    waited = "none due" if oldest is None else _ago(float(oldest))
    return f"0 stuck, oldest due pending {waited}, {dead} dead-lettered"


def check_workers(ctx: SmokeContext) -> str:
    """A fresh heartbeat from each worker type, and no type restarting in a loop."""
    limits = ctx.thresholds
    with ctx.connect() as db:
        liveness = {
            row[0]: (row[1], row[2])
            for row in db.rows("worker_liveness", max_age=limits.heartbeat_max_age)
        }
        starts = dict(db.rows("worker_starts", window=limits.crash_window))
    problems = []
    for worker_type in WORKER_TYPES:
        live, newest = liveness.get(worker_type, (0, None))
        if not live:
            seen = "never" if newest is None else f"{_ago(float(newest))} ago"
            problems.append(
                f"{worker_type}: no fresh heartbeat (newest {seen}, limit "
                f"{_ago(limits.heartbeat_max_age)}); check the worker's logs for its start line"
            )
    for worker_type, times in sorted(starts.items()):
        if len(times) > limits.max_starts:
            problems.append(
                f"{worker_type}: crash loop, {len(times)} starts in the last "
                f"{_ago(limits.crash_window)} (limit {limits.max_starts}) at "
                f"{', '.join(times)} UTC; see why it exits in its logs"
            )
    if problems:
        raise CheckFailedError("; ".join(problems))
    return ", ".join(
        f"{t} {liveness[t][0]} live, {len(starts.get(t, []))} start(s)" for t in WORKER_TYPES
    )
