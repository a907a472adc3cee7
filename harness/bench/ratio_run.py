"""One repetition of the six target ratios of `bench-claim`, each beside its own baseline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from harness.bench import bare, growth, ours, peers
from harness.bench.cases import UPDATE_SCRIPT
from harness.bench.locust_direct import direct_rate, locust_rate
from harness.bench.ratio_table import RatioTable, load_average
from harness.bench.server import PgbenchRun, create_database, create_update_database, pgbench
from harness.postgres.embedded import EmbeddedPostgres
from harness.waiting import wait_until


def _alone(conn: psycopg.Connection[Any]) -> bool:
    row: Any = conn.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0]) == 0


NO_JOB_YET = {"job": "00000000-0000-0000-0000-000000000000"}


@dataclass(frozen=True)
class Sizes:
    """How big and how long each case is: the full run, or `--quick`."""

    pgbench_seconds: int
    backlog: int  # pending jobs before each pgbench case (it must not run dry)
    drain_jobs: int  # jobs each batch drain and pgqueuer empty
    history: int  # completed rows beside the history case
    locust_jobs: int
    locust_users: int = 4
    locust_batch: int = 10


FULL = Sizes(pgbench_seconds=6, backlog=60_000, drain_jobs=20_000, history=1_000_000,
             locust_jobs=20_000)  # fmt: skip
QUICK = Sizes(pgbench_seconds=3, backlog=30_000, drain_jobs=5_000, history=100_000,
              locust_jobs=5_000)  # fmt: skip


class RatioBench:
    """The ratios' databases on one durable server, and a repetition of every ratio."""

    def __init__(
        self,
        server: EmbeddedPostgres,
        work: Path,
        sizes: Sizes,
        say: Callable[[str], None],
    ) -> None:
        self.server, self.work, self.sizes, self.say = server, work, sizes, say
        self.table = RatioTable()
        self.urls: dict[str, str] = {}

    def setup(self) -> None:
        started = time.monotonic()
        self.urls["limit"] = create_update_database(self.server, "ratio_limit")
        for name in ("pgbench", "fresh", "history", "locust"):
            self.urls[name] = create_database(self.server, f"ratio_{name}")
        with psycopg.connect(self.urls["history"], autocommit=True) as conn:
            ours.fill_completed(conn, self.sizes.history)
        self.urls["pgqueuer"] = create_database(self.server, "ratio_pgqueuer", migrate=False)
        peers.pgqueuer_install(self.urls["pgqueuer"])
        for name, text in (
            ("update.sql", UPDATE_SCRIPT),
            ("functions.sql", bare.FUNCTIONS),
            ("bare.sql", bare.BARE),
            ("paced.sql", bare.PACED_CLAIM),
        ):
            (self.work / name).write_text(text)
        self.say(f"ratios: databases ready in {time.monotonic() - started:.0f} s")

    def _pgbench(self, database: str, script: str, run: PgbenchRun) -> tuple[float, list[float]]:
        return pgbench(self.server, database, self.work / script, run)

    def _top_up(self, name: str, pending: int) -> None:
        with psycopg.connect(self.urls[name], autocommit=True) as conn:
            if name == "pgbench":  # each pgbench case starts without the last one's history
                conn.execute("DELETE FROM ops.job_queue WHERE status = 'completed'")
            growth.top_up(conn, growth.GrowthCase(name, pending))

    def _fresh(self, pending: int) -> None:
        """The fresh table: no completed rows, `pending` jobs due."""
        with psycopg.connect(self.urls["fresh"], autocommit=True) as conn:
            conn.execute("DELETE FROM ops.job_queue")
            ours.fill_pending(conn, pending)

    def _drain(self, name: str, threads: int, batch: int, *, combined: bool = True) -> ours.Drain:
        """Drain with `threads` claimers of `batch`; `combined`: each batch settled and the next
        claimed in one statement (complete_jobs_and_claim, as the batch workers do), else a
        claim and a complete_jobs apart."""
        result = ours.drain(
            self.urls[name],
            threads=threads,
            plan=ours.DrainPlan(batch=batch, combined=combined),
            max_jobs=self.sizes.drain_jobs,
            max_seconds=120,
        )
        if result.double_claims or result.errors:
            raise RuntimeError(
                f"the drain of {name} broke the queue's contract: {result.double_claims} "
                f"double claims, {len(result.errors)} incomplete settles"
            )
        return result

    def repetition(self, number: int, total: int) -> None:
        rep = f"[ratios {number}/{total}]"
        self.table.loads.append(load_average())
        seconds = self.sizes.pgbench_seconds
        limit, _ = self._pgbench("ratio_limit", "update.sql", PgbenchRun(8, seconds))
        self.say(f"{rep} UPDATE limit {limit:,.0f} tps (load {self.table.loads[-1]})")
        self._overhead(rep, seconds)
        self._paced(rep, seconds)
        self._batches(rep, limit)
        self._locust(rep, number)

    def _overhead(self, rep: str, seconds: int) -> None:
        """Jobs completed per second, counted in the table (not pgbench's transactions): a bare
        claim that lost every candidate to other clients returns no job (the function looks
        past them in its loop), and its client just tries again. At 16 clients and at one."""
        for clients, key in ((16, "function_overhead"), (1, "function_overhead_1_client")):
            rates: dict[str, float] = {}
            for script in ("bare.sql", "functions.sql"):
                self._top_up("pgbench", self.sizes.backlog)
                before = self._completed("pgbench")
                self._pgbench("ratio_pgbench", script, PgbenchRun(clients, seconds, NO_JOB_YET))
                rates[script] = (self._completed("pgbench") - before) / seconds
            ratio = self.table.add(
                key,
                rates["functions.sql"],
                rates["bare.sql"],
                f"functions {rates['functions.sql']:,.0f} jobs/s, "
                f"bare {rates['bare.sql']:,.0f} jobs/s",
            )
            self.say(f"{rep} {key} {ratio:.2f}")

    def _paced(self, rep: str, seconds: int) -> None:
        self._top_up("pgbench", self.sizes.backlog)
        saturated, _ = self._pgbench(
            "ratio_pgbench", "paced.sql", PgbenchRun(16, seconds, NO_JOB_YET)
        )
        pace = max(1, int(saturated / 2))
        self._top_up("pgbench", self.sizes.backlog)
        _, claim = self._pgbench(
            "ratio_pgbench", "paced.sql", PgbenchRun(16, seconds, NO_JOB_YET, pace, log=True)
        )
        _, update = self._pgbench(
            "ratio_limit", "update.sql", PgbenchRun(16, seconds, {}, pace, log=True)
        )
        claim_p99, update_p99 = ours.p99_ms(claim), ours.p99_ms(update)
        ratio = self.table.add(
            "paced_p99_ratio",
            claim_p99,
            update_p99,
            f"saturated {saturated:,.0f} calls/s, paced at {pace:,}/s: claim p99 "
            f"{claim_p99:.2f} ms, UPDATE p99 {update_p99:.2f} ms",
        )
        self.say(f"{rep} paced_p99_ratio {ratio:.2f}")
        # The same tail at equal utilisation: the UPDATE paced at half its own saturated rate.
        limit16, _ = self._pgbench("ratio_limit", "update.sql", PgbenchRun(16, seconds, {}))
        own_pace = max(1, int(limit16 / 2))
        _, update_own = self._pgbench(
            "ratio_limit", "update.sql", PgbenchRun(16, seconds, {}, own_pace, log=True)
        )
        own_p99 = ours.p99_ms(update_own)
        ratio = self.table.add(
            "paced_p99_own_pace_ratio",
            claim_p99,
            own_p99,
            f"claim p99 {claim_p99:.2f} ms at {pace:,}/s (1/2 its saturated rate), UPDATE p99 "
            f"{own_p99:.2f} ms at {own_pace:,}/s (1/2 its own, {limit16:,.0f} tps saturated)",
        )
        self.say(f"{rep} paced_p99_own_pace_ratio {ratio:.2f}")

    def _batches(self, rep: str, limit: float) -> None:
        jobs = self.sizes.drain_jobs
        self._fresh(jobs)
        batch10 = self._drain("fresh", 4, 10).jobs_per_s
        self._fresh(jobs)
        apart = self._drain("fresh", 4, 10, combined=False).jobs_per_s
        pgqueuer = jobs / peers.pgqueuer_drain(self.urls["pgqueuer"], jobs)
        self.table.add(
            "batch10_vs_pgqueuer",
            batch10,
            pgqueuer,
            f"ours {batch10:,.0f}/s, pgqueuer {pgqueuer:,.0f}/s",
        )
        self.table.add(
            "batch10_apart_vs_pgqueuer",
            apart,
            pgqueuer,
            f"ours {apart:,.0f}/s (claim and complete_jobs apart), pgqueuer {pgqueuer:,.0f}/s",
        )
        self._top_up("history", jobs)
        history = self._drain("history", 4, 100).jobs_per_s
        self.table.add(
            "batch100_history_vs_update",
            history,
            limit,
            f"{history:,.0f}/s beside {self._completed('history'):,} completed rows, "
            f"UPDATE {limit:,.0f} tps",
        )
        self._fresh(jobs)
        fresh4, read4 = self._drain_read("fresh", 4, 100)
        self._fresh(jobs)
        fresh32, read32 = self._drain_read("fresh", 32, 100)
        self.table.add(
            "batch100_fresh_vs_update", fresh4, limit, f"{fresh4:,.0f}/s, UPDATE {limit:,.0f} tps"
        )
        self.table.add(
            "batch100_32_vs_4",
            fresh32,
            fresh4,
            f"32 threads {fresh32:,.0f}/s, 4 {fresh4:,.0f}/s; claim index entries read per job "
            f"claimed {read32:.1f} at 32, {read4:.1f} at 4",
        )
        self.say(
            f"{rep} batch 10 {batch10:,.0f}/s (apart {apart:,.0f}/s), pgqueuer {pgqueuer:,.0f}/s; "
            f"batch 100: history "
            f"{history:,.0f}/s, fresh 4 threads {fresh4:,.0f}/s, 32 threads {fresh32:,.0f}/s"
        )

    def _drain_read(self, name: str, threads: int, batch: int) -> tuple[float, float]:
        """A drain's jobs/s, and the claim index entries read per job it claimed (the walks
        that claimers racing for the same head of the queue repeat)."""
        before = self._index_reads(name)
        result = self._drain(name, threads, batch)
        read = self._index_reads(name) - before
        return result.jobs_per_s, read / result.jobs if result.jobs else 0.0

    def _index_reads(self, name: str) -> int:
        """idx_tup_read of job_queue_claim_idx, once the drain's backends (gone) flushed."""
        with psycopg.connect(self.urls[name], autocommit=True) as conn:
            wait_until(
                "the drain's backends to exit (they flush their statistics as they go)",
                lambda: _alone(conn),
                timeout=30,
            )
            row: Any = conn.execute(
                "SELECT idx_tup_read FROM pg_stat_user_indexes "
                "WHERE indexrelname = 'job_queue_claim_idx'"
            ).fetchone()
        return int(row[0]) if row else 0

    def _completed(self, name: str) -> int:
        with psycopg.connect(self.urls[name], autocommit=True) as conn:
            row: Any = conn.execute(
                "SELECT count(*) FROM ops.job_queue WHERE status = 'completed'"
            ).fetchone()
        return int(row[0])

    def _locust(self, rep: str, number: int) -> None:
        sizes = self.sizes
        url = self.urls["locust"]
        via_locust = locust_rate(
            url, self.work / f"locust-{number}", sizes.locust_jobs, sizes.locust_users,
            sizes.locust_batch,
        )  # fmt: skip
        direct = direct_rate(url, sizes.locust_jobs, sizes.locust_users, sizes.locust_batch)
        ratio = self.table.add(
            "locust_vs_direct",
            via_locust,
            direct,
            f"Locust {via_locust:,.0f} jobs/s, direct {direct:,.0f} jobs/s "
            f"({sizes.locust_users} users/threads, batch {sizes.locust_batch})",
        )
        self.say(f"{rep} locust_vs_direct {ratio:.2f}")
