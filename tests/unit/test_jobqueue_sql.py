"""The named statements in queries.sql, the migrations on disk, and client-side validation."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from reference.db import load_migrations
from reference.jobqueue import JobType, QueueClient, UnknownJobTypeError, job_type_name
from reference.jobqueue.sql import QueryNotFoundError, query

QUEUE_VERBS = [
    "queue_job",
    "claim_pending_job",
    "complete_job",
    "complete_jobs",
    "complete_job_and_claim",
    "fail_job",
    "extend_lock",
    "reap_stuck_jobs",
    "register_heartbeat",
]


@pytest.mark.parametrize("verb", QUEUE_VERBS)
def test_each_queue_verb_is_a_statement_a_client_method_and_a_sql_function(verb: str) -> None:
    statement = query(verb).decode()

    assert f"ops.{verb}(" in statement
    assert callable(getattr(QueueClient, verb))
    assert "--" not in statement  # the description comment is stripped


def test_every_named_statement_is_loaded() -> None:
    text = (resources.files("reference.jobqueue") / "queries.sql").read_text("utf-8")
    names = re.findall(r"^-- name: (\w+)$", text, flags=re.MULTILINE)

    composed = ["complete_jobs_and_claim"]  # complete_jobs and claim_pending_job, one statement
    assert sorted(names) == sorted([*QUEUE_VERBS, *composed, "get_job", "held_jobs"])
    for name in names:
        assert query(name).strip()


def test_an_unknown_statement_name_says_so() -> None:
    with pytest.raises(QueryNotFoundError, match="no query named 'claim_job'"):
        query("claim_job")


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [migration.version for migration in load_migrations()]

    assert versions == list(range(1, len(versions) + 1))


def test_migrations_assemble_no_sql_from_python_strings() -> None:
    for migration in load_migrations():
        assert "%(" not in migration.sql, f"{migration.name} holds a Python placeholder"


@pytest.mark.parametrize("job_type", list(JobType))
def test_known_job_types_pass_through(job_type: JobType) -> None:
    assert job_type_name(job_type.value) == job_type.value


def test_an_unknown_job_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownJobTypeError) as raised:
        job_type_name("ingest_xlsx")

    message = str(raised.value)
    assert "unknown job type 'ingest_xlsx'" in message
    assert all(job_type.value in message for job_type in JobType)
