"""The plugin's Postgres sources, each exercised by a real inner pytest run.

The inner runs load the harness through its `pytest11` entry point from an empty project,
as any project that installs dragonfly-harness would.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from pathlib import Path

import pytest

from harness.network import free_port
from harness.postgres.container import start_container
from harness.postgres.embedded import SERVER_USER
from harness.postgres.external import use_external
from harness.postgres.image import DEFAULT_LOCAL_IMAGE
from harness.postgres.pooler import PgBouncer
from harness.postgres.server import PostgresServer, PostgresSourceError
from harness.postgres.sources import PostgresSource, open_server

pytestmark = pytest.mark.pg_sources

INNER_TEST = """
def test_queue_round_trip(queue, pg_server):
    job_id = queue.queue_job("ingest_csv", {"inner": True})
    [job] = queue.claim_pending_job(["ingest_csv"], "inner-worker")
    assert job.id == job_id
    assert queue.complete_job(job_id, "inner-worker")
    print("INNER SOURCE", pg_server.source)

def test_each_test_gets_a_fresh_database(queue):
    assert queue.claim_pending_job(["ingest_csv"], "inner-worker") == []
"""
REQUIRE_CONTAINER_ENV = "DRAGONFLY_REQUIRE_CONTAINER"
SECRET = "hunter2-not-for-logs"


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=INNER_TEST)
    return pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args, timeout=180)


def test_embedded_source(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "--pg-source=embedded")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*INNER SOURCE embedded*", "postgres: embedded PostgreSQL on*"])


def test_external_source_uses_the_given_url(
    pytester: pytest.Pytester, pg_server: PostgresServer
) -> None:
    result = run_inner(pytester, "--pg-source=external", f"--pg-url={pg_server.conninfo}")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*INNER SOURCE external*", "postgres: external *"])


POOLER_INNER_TEST = """
import os, stat, psycopg

def test_through_pgbouncer(pg_server, database_url, db_conn, queue):
    assert pg_server.source == "pooler" and pg_server.pooled and pg_server.pool_size == 4
    assert os.environ["DATABASE_PREPARED_STATEMENTS"] == "off"
    for n in range(20):  # far past psycopg's prepare threshold of 5
        queue.queue_job("ingest_csv", {"n": n})
        assert db_conn.execute("SELECT count(*) FROM ops.job_queue").fetchone() == (n + 1,)
    direct = psycopg.conninfo.conninfo_to_dict(pg_server.direct_conninfo)
    assert db_conn.execute("SELECT inet_server_port()").fetchone() == (int(direct["port"]),)
    port = psycopg.conninfo.conninfo_to_dict(pg_server.conninfo)["port"]
    for entry in os.listdir("/proc"):
        try:
            args = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\\0")
            if b"pgbouncer" in args[0] and f"listen_port = {port}\\n" in open(args[1]).read():
                print("INNER PGBOUNCER PID", entry)
        except (OSError, IndexError):
            pass
"""


def test_pooler_source_runs_pgbouncer_and_stops_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=POOLER_INNER_TEST)
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--pg-source=pooler", timeout=180
    )

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["postgres: PgBouncer (transaction mode, pool size 4) on *"])
    [pid] = re.findall(r"INNER PGBOUNCER PID (\d+)", result.stdout.str())
    assert not Path(f"/proc/{pid}").exists()  # stopped with the session: no orphan


def test_pooler_files_are_private_to_its_unprivileged_user() -> None:
    pooler = PgBouncer("postgresql://postgres:pw@127.0.0.1:1/postgres")
    try:
        config = pooler._configure(free_port())
        for path in (config, pooler.workdir / "users.txt"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            if os.geteuid() == 0:
                assert path.stat().st_uid == pwd.getpwnam(SERVER_USER).pw_uid
    finally:
        pooler.destroy()


def _container_image_or_skip() -> str:
    image = os.environ.get("DRAGONFLY_PG_IMAGE", DEFAULT_LOCAL_IMAGE)
    try:
        start_container(image).stop()
    except PostgresSourceError as error:
        if os.environ.get(REQUIRE_CONTAINER_ENV) == "1":
            pytest.fail(f"{REQUIRE_CONTAINER_ENV}=1 but the container source fails: {error}")
        pytest.skip(f"container source unavailable here: {error}")
    return image


def test_container_source_runs_testcontainers(pytester: pytest.Pytester) -> None:
    image = _container_image_or_skip()

    result = run_inner(pytester, "--pg-source=container", f"--pg-image={image}")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*INNER SOURCE container*", f"postgres: container {image} on*"])


def test_an_unknown_source_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "--pg-source=cloud")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--pg-source / DRAGONFLY_PG_SOURCE: 'cloud' is not one of auto, container, embedded,*"]
    )


def test_when_no_source_works_the_error_lists_each_and_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    result = run_inner(
        pytester,
        f"--pg-url=postgresql://app:{SECRET}@127.0.0.1:1/app",
        "--pg-data-root=/nonexistent/data",
    )

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*no Postgres source is available; tried:*",
            "*- external: cannot connect to 127.0.0.1:1/app*",
            "*- container: no Docker engine answers*",
            "*- embedded: cannot create a data directory*",
        ]
    )
    assert SECRET not in result.stdout.str() + result.stderr.str()


def test_auto_falls_back_to_embedded_when_docker_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    server = open_server(PostgresSource.AUTO)
    try:
        assert server.source == "embedded"
    finally:
        server.stop()


def test_external_errors_name_the_server_but_never_the_password() -> None:
    with pytest.raises(PostgresSourceError) as raised:
        use_external(f"postgresql://app:{SECRET}@127.0.0.1:1/app")

    assert "external: cannot connect to 127.0.0.1:1/app" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None  # psycopg's own message may quote the URL


def test_external_without_a_url_says_how_to_give_one() -> None:
    with pytest.raises(PostgresSourceError, match="pass --pg-url or set DRAGONFLY_PG_URL"):
        open_server(PostgresSource.EXTERNAL)


def test_a_missing_image_says_how_to_build_the_offline_one() -> None:
    _container_image_or_skip()  # needs a Docker engine
    with pytest.raises(PostgresSourceError, match="dragonfly-harness build-pg-image"):
        start_container("dragonfly-harness/no-such-image:0")
