"""The Enforcement Engine's handlers against a real database: plans, drafting jobs, packets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from reference.config import Settings, load_settings
from reference.jobqueue import Job, JobType, QueueClient, UnknownJobTypeError
from reference.workers.context import Handler, JobContext
from reference.workers.enforcement_engine import SPEC, handle_drafting, handle_strategy
from reference.workers.enforcement_rules import Strategy

WORKER = "test-worker"


@pytest.fixture
def context(database_url: str, db_conn: psycopg.Connection[Any], queue: QueueClient) -> JobContext:
    settings: Settings = load_settings({"DATABASE_URL": database_url})
    return JobContext(db_conn, queue, WORKER, settings)


def insert_judgment(
    conn: psycopg.Connection[Any], case_number: str = "CV-2024-000123", county: str = "Kings"
) -> UUID:
    row = conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount, county)"
        " VALUES (%s, 'Dragonfly Capital LLC', 'Jane Roe', 4210.55, %s) RETURNING id",
        (case_number, county),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def set_profile(conn: psycopg.Connection[Any], judgment_id: UUID, **facts: Any) -> None:
    """Replace the debtor profile of the judgment with these facts (the rest default)."""
    conn.execute("DELETE FROM public.debtor_profiles WHERE judgment_id = %s", (judgment_id,))
    conn.execute(
        "INSERT INTO public.debtor_profiles (judgment_id, employer_name, has_bank_account,"
        " bank_name, bank_account_benefits_only, owns_home, property_address)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            judgment_id,
            facts.get("employer_name"),
            facts.get("has_bank_account", False),
            facts.get("bank_name"),
            facts.get("bank_account_benefits_only", False),
            facts.get("owns_home", False),
            facts.get("property_address"),
        ),
    )


def claim(queue: QueueClient, job_type: JobType) -> Job:
    [job] = queue.claim_pending_job([job_type], WORKER)
    return job


def run(context: JobContext, job_type: JobType, payload: dict[str, Any]) -> Job:
    """Enqueue a job, claim it and run its handler in-process, as the worker loop would."""
    context.queue.queue_job(job_type, payload)
    job = claim(context.queue, job_type)
    SPEC.handlers[job_type](job, context)
    return job


def plans(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT judgment_id, strategy::text, reason FROM enforcement.plans ORDER BY created_at"
    ).fetchall()


def drafting_jobs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT payload, idempotency_key FROM ops.job_queue"
        " WHERE job_type = 'enforcement_drafting' ORDER BY created_at, id"
    ).fetchall()


def packets(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT plan_id, judgment_id, strategy::text, documents, total_fees"
        " FROM enforcement.draft_packets"
    ).fetchall()


def plan_id(conn: psycopg.Connection[Any], judgment_id: UUID) -> UUID:
    row = conn.execute(
        "SELECT id FROM enforcement.plans WHERE judgment_id = %s", (judgment_id,)
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def test_strategy_mirrors_the_postgres_enum(db_conn: psycopg.Connection[Any]) -> None:
    row = db_conn.execute("SELECT enum_range(NULL::enforcement.strategy)::text[]").fetchone()
    assert row is not None
    assert row[0] == [strategy.value for strategy in Strategy]


def test_the_worker_handles_strategy_then_drafting() -> None:
    assert SPEC.job_types == [JobType.ENFORCEMENT_STRATEGY, JobType.ENFORCEMENT_DRAFTING]
    assert SPEC.handlers[JobType.ENFORCEMENT_STRATEGY] is handle_strategy
    assert SPEC.handlers[JobType.ENFORCEMENT_DRAFTING] is handle_drafting
    assert (SPEC.title, SPEC.worker_type, SPEC.default_poll_interval) == (
        "Enforcement Engine",
        "enforcement_engine",
        5.0,
    )


PROFILES: list[tuple[dict[str, Any] | None, Strategy, str]] = [
    (
        {"employer_name": "Acme Corp", "has_bank_account": True, "owns_home": True},
        Strategy.WAGE_GARNISHMENT,
        "employer on file: Acme Corp; an income execution can garnish wages",
    ),
    (
        {"has_bank_account": True, "bank_name": "First Federal", "owns_home": True},
        Strategy.BANK_LEVY,
        "bank account on file at First Federal, not benefits-only;",
    ),
    (
        {"has_bank_account": True, "bank_account_benefits_only": True, "owns_home": True},
        Strategy.PROPERTY_LIEN,
        "owns a home;",
    ),
    ({}, Strategy.SURVEILLANCE, "no employer, levyable bank account or real property on file;"),
    (None, Strategy.SURVEILLANCE, "nothing is known about the debtor (no debtor profile);"),
]


def test_strategy_stores_one_plan_per_judgment_with_its_reason(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_ids = []
    for number, (facts, _, _) in enumerate(PROFILES):
        judgment_id = insert_judgment(db_conn, f"CV-{number}")
        if facts is not None:
            set_profile(db_conn, judgment_id, **facts)
        run(context, JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})
        judgment_ids.append(judgment_id)

    stored = {judgment_id: (strategy, reason) for judgment_id, strategy, reason in plans(db_conn)}
    assert list(stored) == judgment_ids
    for judgment_id, (_, strategy, reason) in zip(judgment_ids, PROFILES, strict=True):
        assert stored[judgment_id][0] == strategy.value
        assert stored[judgment_id][1].startswith(reason)


def test_strategy_enqueues_one_drafting_job_and_a_rerun_adds_nothing(
    context: JobContext, db_conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    judgment_id = insert_judgment(db_conn)
    set_profile(db_conn, judgment_id, employer_name="Acme Corp")

    with caplog.at_level(logging.INFO, logger="reference.workers.enforcement_engine"):
        job = run(context, JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})
    first = db_conn.execute("SELECT id, updated_at FROM enforcement.plans").fetchall()
    handle_strategy(job, context)  # the same job delivered again

    assert db_conn.execute("SELECT id, updated_at FROM enforcement.plans").fetchall() == first
    [(payload, key)] = drafting_jobs(db_conn)
    assert payload == {"judgment_id": str(judgment_id)}
    assert key.startswith(f"drafting:{plan_id(db_conn, judgment_id)}:wage_garnishment:")
    [message] = [r.getMessage() for r in caplog.records if r.name.endswith("enforcement_engine")]
    assert f"judgment {judgment_id} -> wage_garnishment (employer on file: Acme Corp;" in message


def test_a_changed_strategy_enqueues_exactly_one_new_drafting_job(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = insert_judgment(db_conn)
    payload = {"judgment_id": str(judgment_id)}
    set_profile(db_conn, judgment_id, has_bank_account=True, bank_name="First Federal")
    run(context, JobType.ENFORCEMENT_STRATEGY, payload)

    set_profile(db_conn, judgment_id, employer_name="Acme Corp", has_bank_account=True)
    changed = run(context, JobType.ENFORCEMENT_STRATEGY, payload)
    handle_strategy(changed, context)

    [(_, strategy, reason)] = plans(db_conn)
    assert (strategy, reason.split(";")[0]) == ("wage_garnishment", "employer on file: Acme Corp")
    keys = [key.split(":")[2] for _, key in drafting_jobs(db_conn)]
    assert keys == ["bank_levy", "wage_garnishment"]


def test_changing_back_to_an_earlier_strategy_drafts_again(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = insert_judgment(db_conn)
    payload = {"judgment_id": str(judgment_id)}
    for facts in ({"owns_home": True}, {"employer_name": "Acme Corp"}, {"owns_home": True}):
        set_profile(db_conn, judgment_id, **facts)
        run(context, JobType.ENFORCEMENT_STRATEGY, payload)

    keys = [key.split(":")[2] for _, key in drafting_jobs(db_conn)]
    assert keys == ["property_lien", "wage_garnishment", "property_lien"]


def test_the_plan_and_its_drafting_job_commit_together(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = insert_judgment(db_conn)
    # With the job type unknown, queue_job fails after the plan was upserted.
    db_conn.execute("DELETE FROM ops.job_types WHERE job_type = 'enforcement_drafting'")

    with pytest.raises(UnknownJobTypeError):
        run(context, JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})

    assert plans(db_conn) == []


EXPECTED_LIEN_DOCUMENTS = [
    {
        "code": "transcript_of_judgment",
        "title": "Transcript of judgment (CPLR 5018) docketed with the Kings County Clerk, "
        "a lien on the debtor's real property (CPLR 5203)",
        "fee": "25.00",
    },
    {
        "code": "property_execution_real_property",
        "title": "Property execution (CPLR 5230) with notice of levy on real property (CPLR 5235)",
        "fee": "60.00",
    },
]


def test_drafting_stores_the_packet_of_the_plan(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = insert_judgment(db_conn)
    set_profile(db_conn, judgment_id, owns_home=True, property_address="12 Elm St")
    run(context, JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})

    drafting = claim(context.queue, JobType.ENFORCEMENT_DRAFTING)
    handle_drafting(drafting, context)

    [(plan, judgment, strategy, documents, total_fees)] = packets(db_conn)
    assert (plan, judgment) == (plan_id(db_conn, judgment_id), judgment_id)
    assert strategy == "property_lien"
    assert documents == EXPECTED_LIEN_DOCUMENTS
    assert total_fees == Decimal("85.00")


def test_drafting_again_keeps_one_packet_and_follows_the_current_plan(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = insert_judgment(db_conn)
    payload = {"judgment_id": str(judgment_id)}
    run(context, JobType.ENFORCEMENT_STRATEGY, payload)
    drafting = claim(context.queue, JobType.ENFORCEMENT_DRAFTING)
    handle_drafting(drafting, context)
    handle_drafting(drafting, context)
    [(first_plan, _, first_strategy, _, first_total)] = packets(db_conn)

    set_profile(db_conn, judgment_id, has_bank_account=True)
    run(context, JobType.ENFORCEMENT_STRATEGY, payload)
    handle_drafting(claim(context.queue, JobType.ENFORCEMENT_DRAFTING), context)

    assert (first_strategy, first_total) == ("surveillance", Decimal("125.00"))
    [(plan, _, strategy, documents, total_fees)] = packets(db_conn)
    assert plan == first_plan
    assert (strategy, total_fees) == ("bank_levy", Decimal("65.00"))
    assert [document["code"] for document in documents] == [
        "restraining_notice_bank",
        "property_execution_bank",
    ]


def test_a_strategy_change_waits_for_a_drafting_in_progress(
    context: JobContext,
    db_conn: psycopg.Connection[Any],
    db_connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    judgment_id = insert_judgment(db_conn)
    payload = {"judgment_id": str(judgment_id)}
    run(context, JobType.ENFORCEMENT_STRATEGY, payload)
    drafting = claim(context.queue, JobType.ENFORCEMENT_DRAFTING)
    set_profile(db_conn, judgment_id, employer_name="Acme Corp")
    context.queue.queue_job(JobType.ENFORCEMENT_STRATEGY, payload)
    change = claim(context.queue, JobType.ENFORCEMENT_STRATEGY)
    drafter, decider = db_connect(), db_connect()
    decider.execute("SET lock_timeout = '200ms'")

    # Hold the drafting transaction open: the plan it drafted from must not change under it.
    with drafter.transaction():
        handle_drafting(drafting, replace(context, conn=drafter, queue=QueueClient(drafter)))
        with pytest.raises(psycopg.errors.LockNotAvailable):
            handle_strategy(change, replace(context, conn=decider, queue=QueueClient(decider)))

    handle_strategy(change, context)
    [(_, strategy, _)] = plans(db_conn)
    assert strategy == "wage_garnishment"


@pytest.mark.parametrize("job_type", [JobType.ENFORCEMENT_STRATEGY, JobType.ENFORCEMENT_DRAFTING])
def test_a_missing_judgment_is_a_lookup_error_naming_it(
    context: JobContext, db_conn: psycopg.Connection[Any], job_type: JobType
) -> None:
    missing = uuid4()

    with pytest.raises(LookupError, match=f"^judgment {missing} does not exist$"):
        run(context, job_type, {"judgment_id": str(missing)})

    assert plans(db_conn) == []
    assert packets(db_conn) == []
    # The drafting case has the one job the test enqueued itself, without a key.
    expected_keys = [] if job_type is JobType.ENFORCEMENT_STRATEGY else [None]
    assert [key for _, key in drafting_jobs(db_conn)] == expected_keys


def test_drafting_without_a_plan_says_to_run_the_strategy_first(
    context: JobContext, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = insert_judgment(db_conn)

    with pytest.raises(LookupError, match="run enforcement_strategy for it first") as error:
        run(context, JobType.ENFORCEMENT_DRAFTING, {"judgment_id": str(judgment_id)})

    assert str(judgment_id) in str(error.value)
    assert packets(db_conn) == []


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({}, r"the payload needs a judgment_id, e\.g\. \{\"judgment_id\": \"<uuid>\"\}"),
    ({"judgment": "x"}, "the payload needs a judgment_id"),
    ({"judgment_id": "not-a-uuid"}, r"judgment_id 'not-a-uuid' is not a UUID"),
    ({"judgment_id": 42}, r"judgment_id must be a UUID string \(got 42\)"),
]


@pytest.mark.parametrize("handler", [handle_strategy, handle_drafting])
@pytest.mark.parametrize(("payload", "message"), MALFORMED)
def test_a_malformed_payload_is_a_value_error_saying_what_is_wrong(
    context: JobContext, handler: Handler, payload: dict[str, Any], message: str
) -> None:
    context.queue.queue_job(JobType.ENFORCEMENT_STRATEGY, payload)
    job = claim(context.queue, JobType.ENFORCEMENT_STRATEGY)

    with pytest.raises(ValueError, match=message) as error:
        handler(job, context)

    assert str(error.value).startswith(f"enforcement_strategy job {job.id}: ")
