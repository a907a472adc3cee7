"""The mutation check's catalogue still applies to today's queue SQL (fast; the check is slow).

A migration that rewrites a queue function makes the mutants that target it stale: this fails
at once, naming them, instead of `tox -e mutants` failing minutes later.
"""

from __future__ import annotations

from typing import Any

import psycopg

from harness.mutants.catalogue import MUTANTS, MutantError

QUEUE_FUNCTIONS = {
    "queue_job", "claim_pending_job", "complete_job", "complete_jobs", "fail_job",
    "extend_lock", "reap_stuck_jobs",
}  # fmt: skip


def test_every_mutant_applies_and_every_queue_function_has_one(
    db_conn: psycopg.Connection[Any],
) -> None:
    stale = []
    for mutant in MUTANTS:
        with db_conn.transaction(force_rollback=True):  # each on the real SQL, then undone
            try:
                mutant.apply(db_conn)
            except MutantError as error:
                stale.append(str(error))
    assert not stale, "\n".join(stale)
    assert len(MUTANTS) >= 15
    assert len({m.name for m in MUTANTS}) == len(MUTANTS), "mutant names must be unique"
    assert {m.function for m in MUTANTS} >= QUEUE_FUNCTIONS, "a queue function has no mutant"
