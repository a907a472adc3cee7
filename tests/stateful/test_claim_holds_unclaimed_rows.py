"""Found by the model: a claim inside an open transaction also row-locked jobs it did not claim.

The claim locked up to batch_size rows per wanted job type (`LIMIT batch_size FOR UPDATE SKIP
LOCKED` inside the per-type walk) and only then kept the best batch_size of them, so the rows
it passed over stayed locked until its transaction ended and a concurrent claim skipped them:
that worker saw no work while due work was there. Migration 0011 locks only the rows the claim
keeps (issue 17, finding 4); this test, once a strict xfail, now guards the fix, and the state
machine's model predicts no extra locks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from reference.jobqueue import QueueClient

Connect = Callable[..., psycopg.Connection[Any]]


def test_a_claim_holds_no_lock_on_jobs_it_did_not_claim(db_connect: Connect) -> None:
    first, second = QueueClient(db_connect()), QueueClient(db_connect())
    second.conn.execute("SET lock_timeout = '1s'")  # a claim that waits fails, never hangs
    earlier = datetime.now(UTC) - timedelta(minutes=2)
    first.queue_job("enforcement_strategy", run_at=earlier)
    passed_over = first.queue_job("ingest_csv")
    with first.conn.transaction(force_rollback=True):
        claimed = first.claim_pending_job(["ingest_csv", "enforcement_strategy"], "first", 1)
        assert [job.job_type for job in claimed] == ["enforcement_strategy"]
        # The ingest_csv job is due and unclaimed: a concurrent claim must get it.
        assert [job.id for job in second.claim_pending_job(["ingest_csv"], "second")] == [
            passed_over
        ]
