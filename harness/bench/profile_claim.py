"""Where a claim + complete spends its time: `python -m harness.bench.profile_claim`.

The pgbench scripts of the function-overhead ratio (bare statements, then the functions) on a
durable server with pg_stat_statements (nested statements too) and track_functions = all: per
script, the statements' and functions' own time per job completed. Profiling costs time, so
these figures are for the breakdown only, never for a ratio of `bench-claim`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from harness.bench import bare, ours
from harness.bench.server import DURABLE_SETTINGS, PgbenchRun, create_database, pgbench
from harness.postgres.embedded import EmbeddedPostgres

PROFILE_SETTINGS = (
    *DURABLE_SETTINGS,
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=all",
    "track_functions=all",
)
CLIENTS, SECONDS, BACKLOG = 16, 5, 40_000
NO_JOB_YET = {"job": "00000000-0000-0000-0000-000000000000"}

_STATEMENTS = """
SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'profile')
ORDER BY total_exec_time DESC LIMIT 8
"""
_FUNCTIONS = """
SELECT schemaname || '.' || funcname, calls, self_time, total_time FROM pg_stat_user_functions
ORDER BY self_time DESC LIMIT 8
"""


def profile(server: EmbeddedPostgres, work: Path, name: str, script: str) -> None:
    url = server.conninfo("profile")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ops.job_queue")
        ours.fill_pending(conn, BACKLOG)
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")
    (work / f"{name}.sql").write_text(script)
    pgbench(server, "profile", work / f"{name}.sql", PgbenchRun(CLIENTS, SECONDS, NO_JOB_YET))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        done_row: Any = conn.execute(
            "SELECT count(*) FROM ops.job_queue WHERE status = 'completed'"
        ).fetchone()
        done = int(done_row[0]) or 1
        print(f"\n== {name}: {done:,} jobs completed in {SECONDS} s, {CLIENTS} clients")
        print("statements (nested included): calls, ms total, us per job, query")
        for calls, total, query in conn.execute(_STATEMENTS).fetchall():
            print(f"  {calls:>8,} {total:>10,.0f} {1000 * total / done:>8,.1f}  {query}")
        print("functions: calls, self ms, total ms, self us per job")
        for function, calls, self_ms, total_ms in conn.execute(_FUNCTIONS).fetchall():
            print(f"  {function:<36} {calls:>8,} {self_ms:>9,.0f} {total_ms:>9,.0f} "
                  f"{1000 * self_ms / done:>7,.1f}")  # fmt: skip


def main() -> int:
    server = EmbeddedPostgres(None, settings=PROFILE_SETTINGS)
    try:
        server.init()
        server.start()
        create_database(server, "profile")
        with psycopg.connect(server.conninfo("profile"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        with tempfile.TemporaryDirectory(prefix="profile-claim-") as work:
            for name, script in (("bare", bare.BARE), ("functions", bare.FUNCTIONS)):
                profile(server, Path(work), name, script)
    finally:
        server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
