"""Where a batch drain's time goes: `python -m harness.bench.batch_costs [--rounds N]`.

Two measurements behind docs/perf-notes.md, on one durable embedded server, every variant
drained in turn in each round (batch 10, 4 threads, 20,000 jobs):

- the batch path in one statement (complete_jobs_and_claim) against the claim and
  complete_jobs apart, with the client's own CPU per job (is the client the bound?);
- the one-statement drain on copies of the schema without one piece of per-row work each
  (an index, the updated_at trigger), against the schema as migrated.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import psycopg

from harness.bench import ours
from harness.bench.server import create_database, durable_server

JOBS = 20_000
PIECES = {
    "as migrated": "",
    "no job_queue_processing_lease_idx": "DROP INDEX ops.job_queue_processing_lease_idx",
    "no job_queue_unfinished_idx": "DROP INDEX ops.job_queue_unfinished_idx",
    "no touch_updated_at trigger": "DROP TRIGGER job_queue_touch_updated_at ON ops.job_queue",
}


def timed_drain(url: str, *, combined: bool) -> tuple[float, float]:
    """Jobs/s of one drain of a fresh table, and the client's CPU microseconds per job."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ops.job_queue")
        ours.fill_pending(conn, JOBS)
    before = resource.getrusage(resource.RUSAGE_SELF)
    plan = ours.DrainPlan(batch=10, combined=combined)
    result = ours.drain(url, threads=4, plan=plan, max_jobs=JOBS, max_seconds=120)
    after = resource.getrusage(resource.RUSAGE_SELF)
    if result.double_claims or result.errors:
        raise RuntimeError(f"the drain broke the contract: {result.double_claims} double claims")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return result.jobs_per_s, cpu / max(result.jobs, 1) * 1e6


def show(label: str, rates: list[float], base: float) -> None:
    median = statistics.median(rates)
    figures = ", ".join(f"{rate:,.0f}" for rate in rates)
    print(f"{label:36} {figures} jobs/s; median {median:,.0f} ({median / base:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="drains of each variant (3)")
    rounds = parser.parse_args().rounds
    with durable_server() as server:
        urls = {}
        for number, (name, ddl) in enumerate(PIECES.items()):
            urls[name] = create_database(server, f"batch_costs_{number}")
            if ddl:
                with psycopg.connect(urls[name], autocommit=True) as conn:
                    conn.execute(ddl)
        paths: dict[str, list[float]] = {"one statement": [], "apart": []}
        client_cpu: list[float] = []
        pieces: dict[str, list[float]] = {name: [] for name in PIECES}
        started = time.monotonic()
        for _ in range(rounds):
            for label, combined in (("one statement", True), ("apart", False)):
                rate, cpu = timed_drain(urls["as migrated"], combined=combined)
                paths[label].append(rate)
                client_cpu.append(cpu)
            for name, url in urls.items():
                pieces[name].append(timed_drain(url, combined=True)[0])
    base = statistics.median(paths["apart"])
    print("batch 10, 4 threads: one statement (complete_jobs_and_claim) against apart")
    for label, rates in paths.items():
        show(label, rates, base)
    print(f"client CPU per job: {', '.join(f'{cpu:.0f}' for cpu in client_cpu)} us")
    base = statistics.median(pieces["as migrated"])
    print("one statement, the schema without one piece of per-row work each")
    for name, rates in pieces.items():
        show(name, rates, base)
    print(f"batch_costs took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
