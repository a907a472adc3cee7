"""Found by the model: a claim inside an open transaction also row-locks jobs it did not claim.

The claim locks up to batch_size rows per wanted job type (`LIMIT batch_size FOR UPDATE SKIP
LOCKED` inside the per-type walk) and only then keeps the best batch_size of them, so the rows
it passed over stay locked until its transaction ends and a concurrent claim skips them: that
worker sees no work while due work is there. Workers claim in autocommit, where the window is
one statement long, but the claim's contract says SKIP LOCKED skips only rows another claim
holds. The state machine models today's behaviour (`QueueModel.locked_by_claim`); this test
fails until the claim releases (or never takes) the locks it does not keep.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from reference.jobqueue import QueueClient

Connect = Callable[..., psycopg.Connection[Any]]


@pytest.mark.xfail(
    strict=True,
    reason="claim_pending_job keeps row locks on per-type candidates it did not claim "
    "until its transaction ends (reported to the lead; reference code is not ours to edit)",
)
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
