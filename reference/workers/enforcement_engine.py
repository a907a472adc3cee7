"""The Enforcement Engine worker: decide how to collect each judgment, then draft its packet.

`enforcement_strategy` stores one plan per judgment and, in the same transaction, enqueues the
`enforcement_drafting` job that turns the plan into a packet of documents and fees.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from opentelemetry import metrics, trace
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from reference.config import load_settings_or_exit
from reference.jobqueue import Job, JobType
from reference.sqlfile import NamedQueries
from reference.workers.context import JobContext
from reference.workers.enforcement_rules import (
    DebtorFacts,
    Judgment,
    Strategy,
    build_packet,
    decide_strategy,
)
from reference.workers.loop import WorkerSpec, run_worker

query = NamedQueries("reference.workers", "enforcement.sql")
logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
meter = metrics.get_meter(__name__)
plans_decided = meter.create_counter(
    "dragonfly.enforcement.plans", "{plan}", "Enforcement plans decided, by strategy"
)


def judgment_id_of(job: Job) -> UUID:
    """The payload's judgment_id, or a ValueError saying what is wrong with it."""
    where = f"{job.job_type} job {job.id}"
    value = job.payload.get("judgment_id")
    if value is None:
        raise ValueError(
            f'{where}: the payload needs a judgment_id, e.g. {{"judgment_id": "<uuid>"}} '
            f"(got {job.payload!r})"
        )
    if not isinstance(value, str):
        raise ValueError(f"{where}: judgment_id must be a UUID string (got {value!r})")
    try:
        return UUID(value)
    except ValueError:
        raise ValueError(f"{where}: judgment_id {value!r} is not a UUID") from None


def _fetch_one(context: JobContext, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    with context.conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(query(name), params)
        return cursor.fetchone()


def _returning(context: JobContext, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The row an upsert's RETURNING gives back (an upsert always gives one)."""
    row = _fetch_one(context, name, params)
    if row is None:
        raise RuntimeError(f"{name} returned no row")
    return row


def _judgment(context: JobContext, judgment_id: UUID) -> Judgment:
    row = _fetch_one(context, "get_judgment", {"judgment_id": judgment_id})
    if row is None:
        raise LookupError(f"judgment {judgment_id} does not exist")
    return Judgment(**row)


def _log_effects(context: JobContext, job: Job, effects: Mapping[str, object]) -> None:
    """Record, in the handler's transaction, what this run applied (kind -> what it made)."""
    context.conn.execute(
        query("log_effects"),
        {
            "job_id": job.id,
            "attempt": job.attempts,
            "worker_id": context.worker_id,
            "kinds": list(effects),
            "keys": [str(key) for key in effects.values()],
        },
    )


def handle_strategy(job: Job, context: JobContext) -> None:
    """Decide the judgment's strategy, store its plan and enqueue its drafting, atomically."""
    judgment_id = judgment_id_of(job)
    params = {"judgment_id": judgment_id}
    with context.transaction(job):  # commits only while this worker holds the job
        _judgment(context, judgment_id)
        profile = _fetch_one(context, "get_debtor_profile", params)
        with tracer.start_as_current_span(
            "enforcement_strategy decide", attributes={"dragonfly.judgment.id": str(judgment_id)}
        ) as span:
            decision = decide_strategy(DebtorFacts(**profile) if profile else None)
            span.set_attribute("dragonfly.enforcement.strategy", decision.strategy.value)
        plan = _returning(
            context,
            "upsert_plan",
            {**params, "strategy": decision.strategy.value, "reason": decision.reason},
        )
        # The revision changes only when the decision does: a redelivered job finds its
        # drafting job already queued, while any change (even back to an earlier strategy)
        # drafts again.
        drafting_id = context.queue.queue_job(
            JobType.ENFORCEMENT_DRAFTING,
            {"judgment_id": str(judgment_id)},
            idempotency_key=plan["drafting_key"],
        )
        _log_effects(context, job, {"plan": plan["id"], "drafting_job": drafting_id})
    plans_decided.add(1, {"strategy": decision.strategy.value})
    logger.info(
        "enforcement_strategy: judgment %s -> %s (%s); drafting job %s",
        judgment_id,
        decision.strategy,
        decision.reason,
        drafting_id,
    )


def handle_drafting(job: Job, context: JobContext) -> None:
    """Build the packet for the judgment's current plan and store it (one per plan)."""
    judgment_id = judgment_id_of(job)
    with context.transaction(job):
        judgment = _judgment(context, judgment_id)
        plan = _fetch_one(context, "get_plan_for_drafting", {"judgment_id": judgment_id})
        if plan is None:
            raise LookupError(
                f"judgment {judgment_id} has no enforcement plan: "
                "run enforcement_strategy for it first"
            )
        strategy = Strategy(plan["strategy"])
        with tracer.start_as_current_span(
            "enforcement_drafting build_packet",
            attributes={
                "dragonfly.judgment.id": str(judgment_id),
                "dragonfly.enforcement.plan.id": str(plan["id"]),
                "dragonfly.enforcement.strategy": strategy.value,
            },
        ) as span:
            packet = build_packet(strategy, judgment)
            span.set_attribute("dragonfly.enforcement.documents", len(packet.documents))
        stored = _returning(
            context,
            "upsert_draft_packet",
            {
                "plan_id": plan["id"],
                "judgment_id": judgment_id,
                "strategy": strategy.value,
                "documents": Jsonb([document.as_json() for document in packet.documents]),
                "total_fees": packet.total_fees,
            },
        )
        _log_effects(context, job, {"draft_packet": stored["id"]})
    logger.info(
        "enforcement_drafting: judgment %s -> %s packet, %d documents, fees %s",
        judgment_id,
        strategy,
        len(packet.documents),
        packet.total_fees,
    )


SPEC = WorkerSpec(
    title="Enforcement Engine",
    worker_type="enforcement_engine",
    default_poll_interval=5.0,
    # Strategy first: the start line reads `Job types: enforcement_strategy, enforcement_drafting`.
    handlers={
        JobType.ENFORCEMENT_STRATEGY: handle_strategy,
        JobType.ENFORCEMENT_DRAFTING: handle_drafting,
    },
)


def main() -> None:
    settings = load_settings_or_exit()
    sys.exit(run_worker(settings, SPEC))


if __name__ == "__main__":
    # `python -m` runs this file as __main__; run the importable module instead, so that its
    # logger, tracer and meter are named reference.workers.enforcement_engine, not __main__.
    from reference.workers.enforcement_engine import main as run_importable_main

    run_importable_main()
