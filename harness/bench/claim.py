"""`dragonfly-harness bench-claim`: our claim path beside the physical limit and the peers.

On one durable embedded PostgreSQL (fsync on), in one run, the cases are interleaved: each
repetition runs every case once, and the table shows medians. Every figure is also a ratio to
the pgbench single-row UPDATE limit of the same repetition, since absolute figures drift ~25%
between runs on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg

from harness.bench import growth, ours, peers
from harness.bench.cases import (
    BACKLOG,
    BATCH,
    COMBINED,
    COMBINED_PGBENCH,
    COMBINED_SCRIPT,
    DRAIN_JOBS,
    HELD,
    LATENCY,
    NO_JOB_YET,
    OURS_PGBENCH,
    OURS_SCRIPT,
    PACED,
    PACED_WORK,
    PGBENCH_SECONDS,
    PGQUEUER,
    PROCRASTINATE,
    PROCRASTINATE_JOBS,
    SINGLE,
    SINGLE_SECONDS,
    UPDATE_SCRIPT,
)
from harness.bench.claim_report import write_report
from harness.bench.locust_direct import LocustRunError
from harness.bench.ratio_run import FULL, QUICK, RatioBench
from harness.bench.ratio_table import RatioTable
from harness.bench.report import LIMIT, Results
from harness.bench.server import (
    PgbenchRun,
    create_database,
    create_update_database,
    durable_server,
    pgbench,
    run_pgbench,
)
from harness.postgres.embedded import EmbeddedPostgres


def add_bench_claim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repeat", type=int, help="interleaved repetitions (>= 1; default 3, --quick 2)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only the target ratios, small and short (the table in under 3 minutes)",
    )
    parser.add_argument(
        "--ratios-only",
        action="store_true",
        help="only the target ratios, at their full sizes (the older cases left out)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the target ratios as one JSON object on stdout (progress on stderr)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-claim"),
        help="folder for results.md and claims.png (default ./bench-claim)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=1_000_000,
        help="completed rows beside the history case's backlog",
    )
    parser.add_argument("--data-root", type=Path, help="folder for the server's data")


class Bench:
    def __init__(self, server: EmbeddedPostgres, work: Path) -> None:
        self.server = server
        self.work = work
        self.results = Results()
        self.urls: dict[str, str] = {}
        self.plans: dict[str, str] = {}
        self.dead: dict[str, int] = {}
        self.history = 0
        self.double_claims = 0  # jobs handed to two claimers in one drain: must stay 0
        self.lost = 0  # claimed jobs the claimer could not complete: must stay 0

    def say(self, line: str) -> None:
        print(line, flush=True)

    def setup(self, history: int) -> None:
        started = time.monotonic()
        self.history = history
        self.urls["limit"] = create_update_database(self.server, "bench_limit")
        for name in ("pgbench_ours", "single", "batch", "held"):
            self.urls[name] = create_database(self.server, f"bench_{name}")
        for number, case in enumerate(growth.CASES):
            url = create_database(self.server, f"bench_growth_{number}")
            sized = growth.GrowthCase(
                case.name, case.pending, history if case.completed else 0, case.other_type_pending
            )
            with psycopg.connect(url, autocommit=True) as conn:
                growth.prepare(conn, sized)
            self.urls[case.name] = url
        for peer, install in (
            ("pgqueuer", peers.pgqueuer_install),
            ("procrastinate", peers.procrastinate_install),
        ):
            self.urls[peer] = create_database(self.server, f"bench_{peer}", migrate=False)
            install(self.urls[peer])
        (self.work / "update.sql").write_text(UPDATE_SCRIPT)
        (self.work / "ours.sql").write_text(OURS_SCRIPT)
        (self.work / "combined.sql").write_text(COMBINED_SCRIPT)
        self.say(f"setup: databases ready in {time.monotonic() - started:.0f} s")

    def top_up(self, name: str, pending: int) -> None:
        with psycopg.connect(self.urls[name], autocommit=True) as conn:
            growth.top_up(conn, growth.GrowthCase(name, pending))

    def drained(self, rep: str, case: str, result: ours.Drain, limit: float) -> None:
        self.double_claims += result.double_claims
        self.lost += len(result.errors)
        self.record(rep, case, result.jobs_per_s, limit, result.claim_p99_ms())

    def record(
        self, rep: str, case: str, rate: float, limit: float, p99: float | None = None
    ) -> None:
        self.results.add(case, rate, limit, p99)
        extra = f", claim p99 {p99:.1f} ms" if p99 is not None else ""
        self.say(f"{rep} {case}: {rate:,.0f}/s ({rate / limit:.2f}x){extra}")

    def repetition(self, number: int, total: int) -> None:
        rep = f"[{number}/{total}]"
        limit = run_pgbench(
            self.server, "bench_limit", self.work / "update.sql", clients=8, seconds=PGBENCH_SECONDS
        )
        self.record(rep, LIMIT, limit, limit)
        for script, case in (("ours.sql", OURS_PGBENCH), ("combined.sql", COMBINED_PGBENCH)):
            self.top_up("pgbench_ours", BACKLOG)
            rate = run_pgbench(
                self.server,
                "bench_pgbench_ours",
                self.work / script,
                clients=32,
                seconds=PGBENCH_SECONDS,
                variables=NO_JOB_YET,
            )
            self.record(rep, case, rate, limit)
        self.latency_cases(rep, limit)
        singles = [(case, n, ours.DrainPlan()) for n, case in SINGLE.items()]
        singles += [(case, n, ours.DrainPlan(combined=True)) for n, case in COMBINED.items()]
        singles += [
            (case, 16, ours.DrainPlan(combined=combined, work_seconds=PACED_WORK))
            for combined, case in PACED.items()
        ]
        for case, threads, drain_plan in singles:
            self.top_up("single", BACKLOG)
            result = ours.drain(
                self.urls["single"],
                threads=threads,
                plan=drain_plan,
                max_jobs=BACKLOG // 2,
                max_seconds=SINGLE_SECONDS,
            )
            self.drained(rep, case, result, limit)
        for (batch, threads), case in BATCH.items():
            self.top_up("batch", DRAIN_JOBS)
            result = ours.drain(
                self.urls["batch"],
                threads=threads,
                plan=ours.DrainPlan(batch=batch),
                max_jobs=DRAIN_JOBS,
                max_seconds=60,
            )
            self.drained(rep, case, result, limit)
        seconds = peers.pgqueuer_drain(self.urls["pgqueuer"], DRAIN_JOBS)
        self.record(rep, PGQUEUER, DRAIN_JOBS / seconds, limit)
        seconds = peers.procrastinate_drain(self.urls["procrastinate"], PROCRASTINATE_JOBS)
        self.record(rep, PROCRASTINATE, PROCRASTINATE_JOBS / seconds, limit)
        for growth_case in growth.CASES:
            result, plan = growth.run_case(self.urls[growth_case.name], growth_case)
            self.plans[growth_case.name] = plan
            self.drained(rep, growth_case.name, result, limit)
        result, dead = growth.held_transaction_case(self.urls["held"], BACKLOG)
        self.dead = dead
        self.drained(rep, HELD, result, limit)

    def latency_cases(self, rep: str, limit: float) -> None:
        """A call's p99 at 16 claimers from C clients: as fast as they go, then paced."""
        unpaced = 0.0
        for share, case in LATENCY.items():
            self.top_up("pgbench_ours", BACKLOG)
            run = PgbenchRun(
                clients=16,
                seconds=PGBENCH_SECONDS,
                variables=NO_JOB_YET,
                rate=int(unpaced * share) if share else None,
                log=True,
            )
            rate, seconds = pgbench(
                self.server, "bench_pgbench_ours", self.work / "combined.sql", run
            )
            unpaced = unpaced or rate
            self.record(rep, case, rate, limit, ours.p99_ms(seconds))

    def notes(self) -> None:
        notes = self.results.notes
        notes[OURS_PGBENCH] = "20,000 pending; a claim and a completion, two transactions"
        notes[COMBINED_PGBENCH] = "20,000 pending; one transaction completes a job, claims the next"
        for name in LATENCY.values():
            notes[name] = "20,000 pending; p99 of one call's own time (pgbench's transaction log)"
        for name in [*SINGLE.values(), *COMBINED.values(), *PACED.values()]:
            notes[name] = f"{SINGLE_SECONDS:.0f} s on a 20,000-job backlog"
        for name in BATCH.values():
            notes[name] = f"drains {DRAIN_JOBS:,} jobs"
        notes[PGQUEUER] = f"drains {DRAIN_JOBS:,} no-op jobs"
        notes[PROCRASTINATE] = f"drains {PROCRASTINATE_JOBS:,} no-op jobs"
        for name, plan in self.plans.items():
            notes[name] = f"16 threads, {growth.GROWTH_MAX_JOBS:,} claims; plan: {plan}"
            if "history" in name:
                notes[name] = f"{self.history:,} completed rows; " + notes[name]
        dead = self.dead
        notes[HELD] = (
            f"dead tuples before {dead.get('before', 0):,}, with the transaction "
            f"held {dead.get('held', 0):,}, after release + VACUUM "
            f"{dead.get('released', 0):,}"
        )


def run_bench_claim(args: argparse.Namespace) -> int:
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 3)
    if repeat < 1:
        print("error: --repeat must be at least 1 (3 or more for medians)", file=sys.stderr)
        return 2
    if args.history < 0:
        print("error: --history must be 0 or more completed rows", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        # With --json, stdout carries only the JSON object: progress goes to stderr.
        with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
            table, code = _run(args, repeat)
    except (peers.PeerUnavailableError, LocustRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(table.as_json()))
    else:
        print(table.render())
        print(f"bench-claim took {time.monotonic() - started:.0f} s")
    return code


def _run(args: argparse.Namespace, repeat: int) -> tuple[RatioTable, int]:
    sizes = QUICK if args.quick else replace(FULL, history=args.history)
    only_ratios = args.quick or args.ratios_only
    with (
        tempfile.TemporaryDirectory(prefix="bench-claim-") as work,
        durable_server(args.data_root) as server,
    ):
        bench = Bench(server, Path(work))
        ratios = RatioBench(server, Path(work), sizes, bench.say)
        bench.say(
            f"bench-claim: durable PostgreSQL (fsync on) on 127.0.0.1:{server.port}; "
            f"{repeat} interleaved repetitions"
            + (" (quick: the ratios only)" if args.quick else "")
        )
        ratios.setup()
        if not only_ratios:
            bench.setup(args.history)
        for number in range(1, repeat + 1):
            ratios.repetition(number, repeat)
            if not only_ratios:
                bench.repetition(number, repeat)
        if only_ratios:
            return ratios.table, 0
        bench.notes()
        return ratios.table, write_report(bench.results, bench.double_claims, bench.lost, args.out)
