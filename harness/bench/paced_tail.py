"""Where the paced claim's tail comes from: `python -m harness.bench.paced_tail`.

On one durable embedded server (docs/perf-notes.md, `paced_p99_ratio`):

- the paced `complete_job_and_claim` at 16 clients and half the saturated rate, with and
  without a VACUUM of ops.job_queue before it, and at one client: p50, p90, p99;
- what the active backends wait on (pg_stat_activity sampled every ~2 ms) during the paced
  claim and during the single-row UPDATE paced at half its own saturated rate.
"""

from __future__ import annotations

import collections
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from harness.bench import bare, growth
from harness.bench.cases import UPDATE_SCRIPT
from harness.bench.server import (
    PgbenchRun,
    create_database,
    create_update_database,
    durable_server,
    pgbench,
)
from harness.postgres.embedded import EmbeddedPostgres

SECONDS = 6
NO_JOB_YET = {"job": "00000000-0000-0000-0000-000000000000"}
WAITS = """
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU (no wait)')
FROM pg_stat_activity WHERE application_name = 'pgbench' AND state <> 'idle'
"""


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return ordered[int(share * (len(ordered) - 1))] * 1000.0

    return f"p50 {at(0.5):.2f}, p90 {at(0.9):.2f}, p99 {at(0.99):.2f} ms ({len(ordered)} calls)"


def waits_during(url: str, run: Callable[[], object]) -> str:
    """The wait events of the pgbench backends, sampled while `run()` runs, as shares."""
    counts: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.wait(0.002):
                counts.update(row[0] for row in conn.execute(WAITS).fetchall())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    total = sum(counts.values()) or 1
    shares = ", ".join(
        f"{event} {count * 100 / total:.0f}%" for event, count in counts.most_common(6)
    )
    return f"{shares} ({total} samples)"


class PacedTail:
    def __init__(self, server: EmbeddedPostgres, work: Path) -> None:
        self.server = server
        self.url = create_database(server, "paced_tail")
        self.update_url = create_update_database(server, "paced_tail_update")
        self.claim = work / "paced.sql"
        self.claim.write_text(bare.PACED_CLAIM)
        self.update = work / "update.sql"
        self.update.write_text(UPDATE_SCRIPT)

    def top_up(self, *, vacuum: bool = False) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DELETE FROM ops.job_queue WHERE status = 'completed'")
            growth.top_up(conn, growth.GrowthCase("paced_tail", 60_000))
            if vacuum:
                conn.execute("VACUUM ANALYZE ops.job_queue")

    def claim_run(self, clients: int, rate: int | None, *, log: bool = False) -> list[float]:
        run = PgbenchRun(clients, SECONDS, NO_JOB_YET, rate, log=log)
        return pgbench(self.server, "paced_tail", self.claim, run)[1]

    def report(self) -> None:
        self.top_up(vacuum=True)
        saturated, _ = pgbench(
            self.server, "paced_tail", self.claim, PgbenchRun(16, SECONDS, NO_JOB_YET)
        )
        pace = max(1, int(saturated / 2))
        print(f"claim saturated at 16 clients: {saturated:,.0f}/s; paced at {pace:,}/s")
        for vacuum in (False, True, False, True):
            self.top_up(vacuum=vacuum)
            times = self.claim_run(16, pace, log=True)
            print(f"16 clients, VACUUM first: {vacuum!s:5}  {percentiles(times)}")
        self.top_up(vacuum=True)
        one = max(1, pace // 16)
        print(
            f"1 client at {one}/s:                {percentiles(self.claim_run(1, one, log=True))}"
        )
        self.top_up()
        waits = waits_during(self.url, lambda: self.claim_run(16, pace))
        print(f"claim backends, 16 clients at {pace:,}/s: {waits}")
        limit, _ = pgbench(self.server, "paced_tail_update", self.update, PgbenchRun(16, SECONDS))
        own = max(1, int(limit / 2))
        update_run = PgbenchRun(16, SECONDS, {}, own)
        waits = waits_during(
            self.update_url,
            lambda: pgbench(self.server, "paced_tail_update", self.update, update_run),
        )
        print(f"UPDATE backends, 16 clients at {own:,}/s: {waits}")


def main() -> None:
    started = time.monotonic()
    with durable_server() as server, tempfile.TemporaryDirectory(prefix="paced-tail-") as work:
        PacedTail(server, Path(work)).report()
    print(f"paced_tail took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
