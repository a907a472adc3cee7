"""`python -m harness.mutants`: run every mutant against its suites and print the table.

Queue mutants run against the integration and property suites; access mutants (grants, row-level
security, policies) against the access suite (the access matrix test and the smoke access check).

Each mutant runs twice: against the hand-written queue tests and against the property layer
alone (state machine + history checker). Exit 1 when a mutant survives the property layer or
every suite; a mutant only the property layer kills is a gap in the hand-written tests, shown
in the table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.mutants.catalogue import ALL_MUTANTS
from harness.mutants.plugin import MUTANT_ENV, REPORT_ENV
from harness.postgres.embedded import start_embedded

SUITES = {
    "integration": [
        "tests/integration/test_queue_claim.py",
        "tests/integration/test_queue_failures.py",
        "tests/integration/test_queue_concurrency.py",
        "tests/integration/test_queue_edges.py",
        "tests/integration/test_queue_leases.py",
    ],
    "property": [
        "tests/stateful/test_queue_model_machine.py",
        "tests/history/test_concurrent_history.py::test_concurrent_calls_keep_every_rule_of_the_queue",
    ],
    "access": [
        "tests/contract/test_access_matrix.py",
        "tests/smoke/test_smoke_access.py",
    ],
}
RUN_TIMEOUT = 300  # seconds per pytest run; a mutant that hangs a suite counts as killed


@dataclass(frozen=True)
class Outcome:
    killed_by: str | None  # the first failing test, None when the mutant survived
    seconds: float


def run_suite(suite: str, mutant: str | None, pg_url: str) -> Outcome:
    """Run one suite with the mutant applied to its template; which test failed first."""
    with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False) as report:
        report_path = Path(report.name)
    env = {**os.environ, "DRAGONFLY_PG_URL": pg_url, REPORT_ENV: str(report_path)}
    env[MUTANT_ENV] = mutant or ""
    command = [
        sys.executable, "-m", "pytest", *SUITES[suite], "-x", "-q", "-p", "no:cacheprovider",
        "-p", "harness.mutants.plugin", "--pg-source=external", "--hypothesis-profile=mutants",
        "--no-header", "-o", "addopts=--strict-markers --strict-config",
    ]  # fmt: skip
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, timeout=RUN_TIMEOUT, check=False
        )
        failed = result.returncode != 0
    except subprocess.TimeoutExpired:
        return Outcome(f"(timed out after {RUN_TIMEOUT}s)", time.monotonic() - started)
    seconds = time.monotonic() - started
    first = report_path.read_text().strip()
    report_path.unlink()
    if failed and not first:
        first = f"(pytest exit {result.returncode}: {result.stdout.decode()[-300:].strip()})"
    return Outcome(first if failed else None, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutants", description=__doc__)
    parser.add_argument("--only", nargs="*", help="mutant names to run (default: all)")
    parser.add_argument("--suite", choices=sorted(SUITES), action="append",
                        help="suites to run (default: both)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="pytest runs at once (default 2)")
    args = parser.parse_args(argv)
    mutants = [m for m in ALL_MUTANTS if not args.only or m.name in args.only]
    wanted = args.suite or sorted(SUITES)
    suites = [s for s in wanted if any(s in m.suites for m in mutants)]
    server = start_embedded(None)
    try:
        for suite in suites:  # the real SQL must pass, or every mutant would look killed
            baseline = run_suite(suite, None, server.conninfo)
            if baseline.killed_by is not None:
                print(f"the {suite} suite fails without a mutant: {baseline.killed_by}")
                return 2
            print(f"baseline {suite}: passed in {baseline.seconds:.1f}s", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {
                (m.name, s): pool.submit(run_suite, s, m.name, server.conninfo)
                for m in mutants
                for s in suites
                if s in m.suites
            }
            outcomes = {}
            for (name, suite), future in futures.items():
                outcomes[(name, suite)] = outcome = future.result()
                verdict = "killed" if outcome.killed_by else "SURVIVED"
                print(f"{name} / {suite}: {verdict} in {outcome.seconds:.1f}s", flush=True)
    finally:
        server.stop()
    return print_table(mutants_names=[m.name for m in mutants], suites=suites, outcomes=outcomes)


def print_table(
    mutants_names: list[str], suites: list[str], outcomes: dict[tuple[str, str], Outcome]
) -> int:
    survivors, gaps = [], []
    header = " ".join(f"{suite + ': first killing test':<60} {'s':>5}" for suite in suites)
    print(f"\n{'mutant':<28} {header}")
    for name in mutants_names:
        cells = []
        for suite in suites:
            if (name, suite) not in outcomes:  # not one of this mutant's suites
                cells.append(f"{'-':<60} {'':>5}")
                continue
            outcome = outcomes[(name, suite)]
            if outcome.killed_by is None:
                gaps.append(f"{name} ({suite})")
            label = (outcome.killed_by or "SURVIVED").split("::", 1)[-1]  # without the path
            cells.append(f"{label[:60]:<60} {outcome.seconds:5.1f}")
        print(f"{name:<28} " + " ".join(cells))
        killers = [outcomes[(name, s)].killed_by for s in suites if (name, s) in outcomes]
        if not any(killers) or (
            (name, "property") in outcomes and not outcomes[(name, "property")].killed_by
        ):
            survivors.append(name)
    runs = len(outcomes)
    print(f"\n{runs - len(gaps)} of {runs} mutant runs killed")
    if gaps:
        print("not killed by that suite alone: " + ", ".join(gaps))
    if survivors:
        print("SURVIVED (the property layer or every suite): " + ", ".join(survivors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
