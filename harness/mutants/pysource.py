"""Mutants of the workers' critical Python lines: exact-string edits of a copy of `reference`.

Each edit must match exactly once in its file, or the run stops before it starts with "mutant X:
the text to replace is not found in <file>": a rewrite of the file shows at the merge.
The runner copies the package to a temp dir, edits the copy and puts it first on PYTHONPATH
(PYTHONSAFEPATH keeps the working directory out of the way), so the tests and every process they
start (uvicorn, workers) run the mutated code while the worktree stays untouched.
"""

from __future__ import annotations

from harness.mutants.kinds import PyMutant

FAILURES = "reference/workers/failures.py"
LEASE = "reference/workers/lease.py"
INGEST = "reference/workers/ingest_processor.py"
ERRORS = "tests/integration/test_worker_errors.py"
WLEASE = "tests/integration/test_worker_lease.py"
INGEST_TESTS = "tests/integration/test_ingest_processor.py"

PY_MUTANTS: list[PyMutant] = [
    PyMutant("py-every-error-is-connection-loss", FAILURES,
             "            return True\n    return False\n",
             "            return True\n    return True\n",
             "a job whose handler hits a database error is resumed forever, never failed",
             kill=(ERRORS,)),
    PyMutant("py-deadlock-is-connection-loss", FAILURES,
             '("08", "57P01", "57P02", "57P03")', '("08", "40P01", "57P01", "57P02", "57P03")',
             "a deadlocked job is retried in place instead of failed with its SQLSTATE",
             kill=(ERRORS + "::test_a_deadlock_between_two_handlers_fails_one_job_and_completes_"
                   "the_other",)),
    PyMutant("py-failure-message-drops-sqlstate", FAILURES,
             'return f"{type(error).__name__}: SQLSTATE {sqlstate}: {text}"',
             'return f"{type(error).__name__}: {text}"',
             "last_error no longer says which SQLSTATE failed the job", kill=(ERRORS,)),
    PyMutant("py-lease-no-heartbeat", LEASE, "            self.heartbeat(queue)\n",
             "            pass\n", "a worker busy with a long job shows as stale",
             kill=(WLEASE + "::test_the_worker_heartbeats_while_a_long_job_runs",)),
    PyMutant("py-lease-never-extended", LEASE,
             "if not queue.extend_lock(self.job_id, self.worker_id, "
             "lock_timeout=self.lock_timeout)",
             "if not True", "a long job is reaped mid-run: its lease is never extended",
             kill=(WLEASE + "::test_an_extended_lease_outlives_the_lock_timeout_and_the_job_"
                   "completes",)),
    PyMutant("py-lease-loss-unreported", LEASE, "                self.lost.set()\n",
             "                pass\n", "a handler whose lease was taken goes on as if it held it",
             kill=(WLEASE + "::test_a_lost_lease_reaches_the_handler_and_the_job_is_left_to_"
                   "its_new_owner",)),
    PyMutant("py-lease-extended-past-limit", LEASE, "if now >= self.deadline:", "if False:",
             "a job stuck past its time limit keeps its lease and is never reaped",
             kill=("tests/integration/test_worker_job_limits.py",)),
    PyMutant("py-plan-upsert-keeps-strategy", "reference/workers/enforcement.sql",
             "ON CONFLICT (judgment_id) DO UPDATE\nSET strategy = excluded.strategy,\n",
             "ON CONFLICT (judgment_id) DO UPDATE\nSET strategy = plan.strategy,\n",
             "a changed strategy is never stored: the plan keeps the first decision",
             kill=("tests/integration/test_enforcement_engine.py",)),
    PyMutant("py-row-errors-not-idempotent", "reference/workers/ingest.sql",
             "    ON CONFLICT (batch_id, row_number, error_code) DO NOTHING\n", "\n",
             "running an ingest job again fails on its own row errors", kill=(INGEST_TESTS,)),
    PyMutant("py-judgment-upsert-rewrites-unchanged", "reference/workers/ingest.sql",
             "    WHERE (j.plaintiff, j.defendant, j.judgment_amount, j.filing_date, j.county)\n"
             "        IS DISTINCT FROM\n",
             "    WHERE (j.plaintiff, j.defendant, j.judgment_amount, j.filing_date, j.county)\n"
             "        IS NOT DISTINCT FROM\n",
             "a changed row no longer updates its judgment; an unchanged one is rewritten",
             kill=(INGEST_TESTS,)),
    PyMutant("py-ingest-valid-count-is-upserted", INGEST, '"valid": valid},', '"valid": upserted},',
             "a batch of unchanged rows reports no valid rows",
             kill=(INGEST_TESTS + "::test_a_second_batch_of_the_same_file_changes_no_judgment",)),
    PyMutant("py-ingest-rejected-uncounted", INGEST, '"rejected": rejected,', '"rejected": 0,',
             "rows the CSV reader rejected are missing from the batch's counts",
             kill=(INGEST_TESTS,)),
]  # fmt: skip
