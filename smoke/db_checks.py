"""Checks over a direct database connection: reachability, schema, queue health, workers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from smoke import contract
from smoke.context import SmokeContext, first_line
from smoke.runner import CheckFailedError
from smoke.sql import query


def _column(conn: psycopg.Connection[Any], name: str, **params: object) -> list[Any]:
    return [row[0] for row in conn.execute(query(name), params)]


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
        with ctx.connect() as conn:
            version = _column(conn, "server_version")[0]
    except CheckFailedError as failure:
        ctx.db_error = str(failure).removeprefix("cannot connect: ")
        raise
    except psycopg.Error as error:
        ctx.db_error = first_line(error)
        raise CheckFailedError(f"connected, but a query failed: {ctx.db_error}") from None
    return f"PostgreSQL {version}"


def check_schema(ctx: SmokeContext) -> str:
    """ops.job_queue's columns, enum labels and indexes, the functions, views and job types."""
    with ctx.connect() as conn:
        columns = set(_column(conn, "job_queue_columns"))
        missing = [
            f"column ops.job_queue.{c}" for c in contract.JOB_QUEUE_COLUMNS if c not in columns
        ]
        labels = set(_column(conn, "job_status_labels"))
        missing += [
            f"ops.job_status value '{v}'" for v in contract.JOB_STATUS_LABELS if v not in labels
        ]
        indexes = dict(conn.execute(query("job_queue_indexes")).fetchall())
        missing += [
            f"index ops.{name}"
            for name, fragment in contract.JOB_QUEUE_INDEXES.items()
            if fragment not in indexes.get(name, "")
        ]
        functions = set(_column(conn, "ops_functions"))
        missing += [f"function ops.{f}" for f in contract.FUNCTIONS if f not in functions]
        relations = set(_column(conn, "ops_relations"))
        missing += [f"table/view ops.{r}" for r in contract.RELATIONS if r not in relations]
        if "job_types" in relations:
            known = set(_column(conn, "known_job_types"))
            missing += [f"job type {t}" for t in contract.JOB_TYPES if t not in known]
    if missing:
        raise CheckFailedError(
            f"missing: {'; '.join(missing)} — apply the migrations in reference/db/migrations "
            "to this database"
        )
    counts = (
        f"{len(contract.JOB_QUEUE_COLUMNS)} columns, {len(contract.JOB_QUEUE_INDEXES)} indexes, "
        f"{len(contract.FUNCTIONS)} functions"
    )
    return f"ops.job_queue contract present ({counts})"


def check_queue_health(ctx: SmokeContext) -> str:
    """No stuck lease, no long-waiting due job, few dead letters; offenders listed."""
    limits = ctx.thresholds
    params = {
        "lock_timeout": limits.lock_timeout,
        "dead_letter_window": limits.dead_letter_window,
        "max_pending_age": limits.max_pending_age,
    }
    problems = []
    with ctx.connect() as conn:
        row = conn.execute(query("queue_summary"), params).fetchone()
        stuck, oldest, dead = row if row else (0, None, 0)
        if stuck:
            problems.append(
                f"{stuck} stuck (processing, lease older than {_ago(limits.lock_timeout)}): "
                + _jobs(conn.execute(query("stuck_jobs"), params))
            )
        if oldest is not None and float(oldest) > limits.max_pending_age:
            problems.append(
                f"due pending jobs waiting over {_ago(limits.max_pending_age)}: "
                + _jobs(conn.execute(query("old_pending_jobs"), params))
            )
        if dead > limits.max_dead_letters:
            problems.append(
                f"{dead} dead-lettered in the last {_ago(limits.dead_letter_window)} "
                f"(limit {limits.max_dead_letters}): "
                + _jobs(conn.execute(query("recent_dead_letters"), params))
            )
    if problems:
        raise CheckFailedError("; ".join(problems))
    waited = "none due" if oldest is None else _ago(float(oldest))
    return f"0 stuck, oldest due pending {waited}, {dead} dead-lettered"


def check_workers(ctx: SmokeContext) -> str:
    """A fresh heartbeat from each worker type, and no type restarting in a loop."""
    limits = ctx.thresholds
    with ctx.connect() as conn:
        liveness = {
            row[0]: (row[1], row[2])
            for row in conn.execute(query("worker_liveness"), {"max_age": limits.heartbeat_max_age})
        }
        starts = dict(
            conn.execute(query("worker_starts"), {"window": limits.crash_window}).fetchall()
        )
    problems = []
    for worker_type in contract.WORKER_TYPES:
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
        f"{t} {liveness[t][0]} live, {len(starts.get(t, []))} start(s)"
        for t in contract.WORKER_TYPES
    )
