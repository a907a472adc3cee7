"""`python -m harness.mutants`: run every mutant against its suites and print the table.

Queue mutants run against the integration and property suites; the other functions, views and
triggers against the schema suite; access mutants against the access suite; Python mutants of the
workers against the workers suite. A mutant's `kill` tests run first in each suite but the
property layer (pytest -x stops at the first failure, so the rest runs only if it survived).

No baseline run of whole suites: after the mutants, one pytest run of just the tests that killed
them checks they pass on the real code (exit 2 if one does not: its kills mean nothing).

Exit 1 when a mutant survives the property layer or every suite; a queue mutant only the property
layer kills is a gap in the hand-written tests, shown in the table. Hypothesis runs with one
fixed seed (--seed) and the tests in the order given (pytest-randomly off), so a kill repeats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.mutants.catalogue import ALL_MUTANTS, AnyMutant
from harness.mutants.kinds import PyMutant
from harness.mutants.plugin import MUTANT_ENV, PY_ROOT_ENV, REPORT_ENV
from harness.mutants.report import Outcome, print_table
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
    "schema": [
        "tests/integration/test_contract_objects.py",
        "tests/integration/test_schema_upkeep.py",
        "tests/integration/test_batch_follows_job.py",
        "tests/integration/test_queue_leases.py",
        "tests/integration/test_queue_failures.py",
        "tests/integration/test_claim_fast_path.py",
        "tests/integration/test_fenced_effects.py",
        "tests/integration/test_enforcement_engine.py",
    ],
    "workers": [
        "tests/integration/test_worker_errors.py",
        "tests/integration/test_worker_lease.py",
        "tests/integration/test_worker_job_limits.py",
        "tests/integration/test_fenced_effects.py",
        "tests/integration/test_ingest_processor.py",
    ],
}
RUN_TIMEOUT = 300  # seconds per pytest run; a mutant that hangs a suite counts as killed
DEFAULT_SEED = 19  # Hypothesis's seed for every run: the same examples, so a kill repeats


def test_args(mutant: AnyMutant | None, suite: str) -> list[str]:
    """The suite's tests, the mutant's expected killers first (not for the property layer)."""
    first = list(mutant.kill) if mutant is not None and suite != "property" else []
    return [*first, *(path for path in SUITES[suite] if path not in first)]


def mutated_copy(mutant: PyMutant) -> Path:
    """A temp dir holding an edited copy of the `reference` package (the worktree untouched)."""
    root = Path(tempfile.mkdtemp(prefix=f"mutant-{mutant.name}-"))
    source = Path(__file__).resolve().parents[2] / "reference"
    shutil.copytree(source, root / "reference", ignore=shutil.ignore_patterns("__pycache__"))
    mutant.edit(root)
    return root


def python_env(root: Path) -> dict[str, str]:
    """The environment that makes every process, the tests' subprocesses too, import the copy:
    first on PYTHONPATH, and PYTHONSAFEPATH keeps `python -m` from putting the working directory
    (the worktree's own package) before it; the editable install's finder comes after both."""
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1", PY_ROOT_ENV: str(root)}
    probe = subprocess.run(
        [sys.executable, "-c", "import reference.workers.lease as m; print(m.__file__)"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if not probe.stdout.strip().startswith(str(root)):
        raise RuntimeError(f"the mutated copy in {root} is not the one imported: {probe}")
    return env


def run_suite(suite: str, mutant: AnyMutant | None, pg_url: str, seed: int) -> Outcome:
    """Run one suite with the mutant applied (pytest -x); which test failed first."""
    return run_tests(test_args(mutant, suite), mutant, pg_url, seed, ["-x"])


def pytest_command(tests: list[str], options: list[str], seed: int) -> list[str]:
    """The pytest run of one suite: the tests in the order given (pytest-randomly off, so the
    mutant's killers run first and the same test kills it every time), Hypothesis on `seed`."""
    return [
        sys.executable, "-m", "pytest", *tests, *options, "-q",
        "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "harness.mutants.plugin",
        "--pg-source=external", "--hypothesis-profile=mutants", f"--hypothesis-seed={seed}",
        "--no-header", "-o", "addopts=--strict-markers --strict-config",
    ]  # fmt: skip


def run_tests(
    tests: list[str], mutant: AnyMutant | None, pg_url: str, seed: int, options: list[str]
) -> Outcome:
    """Run the tests with the mutant applied; the failing tests' ids, the first failure first."""
    with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False) as report:
        report_path = Path(report.name)
    root = mutated_copy(mutant) if isinstance(mutant, PyMutant) else None
    env = python_env(root) if root is not None else dict(os.environ)
    env.update({"DRAGONFLY_PG_URL": pg_url, REPORT_ENV: str(report_path)})
    env[MUTANT_ENV] = mutant.name if mutant is not None and root is None else ""
    command = pytest_command(tests, options, seed)
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(f"(timed out after {RUN_TIMEOUT}s)", time.monotonic() - started)
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    seconds = time.monotonic() - started
    failures = report_path.read_text().splitlines()  # ids may hold spaces (parameters)
    report_path.unlink()
    first = failures[0] if failures else ""
    if result.returncode != 0 and not first:  # no test failed: the run broke, no kill
        tail = (result.stdout.decode() + result.stderr.decode())[-400:].strip()
        return Outcome(None, seconds, error=f"pytest exit {result.returncode}: {tail}")
    return Outcome(first if result.returncode != 0 else None, seconds, failures=tuple(failures))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutants", description=__doc__)
    parser.add_argument("--only", nargs="*", help="mutant names to run (default: all)")
    parser.add_argument("--suite", choices=sorted(SUITES), action="append",
                        help="suites to run (default: every suite)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="pytest runs at once (default 2)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"Hypothesis seed of every run (default {DEFAULT_SEED})")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="print each mutant and its object")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()) - {m.name for m in ALL_MUTANTS})
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
    mutants = [m for m in ALL_MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name} {mutant.target}")
        return 0
    wanted = args.suite or sorted(SUITES)
    suites = [s for s in wanted if any(s in m.suites for m in mutants)]
    for mutant in mutants:  # a stale Python edit fails now, not minutes into the run
        if isinstance(mutant, PyMutant):
            shutil.rmtree(mutated_copy(mutant))
    server = start_embedded(None)
    try:
        baseline: Outcome | None = None
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {
                (m.name, s): pool.submit(run_suite, s, m, server.conninfo, args.seed)
                for m in mutants
                for s in suites
                if s in m.suites
            }
            outcomes = {}
            for (name, suite), future in futures.items():
                outcomes[(name, suite)] = outcome = future.result()
                verdict = "killed" if outcome.killed_by else outcome.error or "SURVIVED"
                print(f"{name} / {suite}: {verdict} in {outcome.seconds:.1f}s", flush=True)
            # The real code must pass the tests that killed, or those kills mean nothing: one
            # run of just those tests, not a baseline of every suite (survivors need none).
            killers = sorted(
                {o.killed_by for o in outcomes.values() if o.killed_by and "::" in o.killed_by}
            )
            baseline = run_tests(killers, None, server.conninfo, args.seed, []) if killers else None
    finally:
        server.stop()
    if baseline is not None:
        if baseline.failures or baseline.error:
            print("the real code fails tests that killed mutants (those kills do not count): "
                  + (", ".join(baseline.failures) or str(baseline.error)))  # fmt: skip
            return 2
        print(f"baseline: the {len(killers)} killing tests pass on the real code "
              f"({baseline.seconds:.1f}s)")  # fmt: skip
    return print_table(mutants, suites, outcomes, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
