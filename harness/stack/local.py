"""The whole local reference stack as one context manager: Postgres, migrations, API, workers.

For tools that test "the stack they start themselves" (SPEC §5), e.g. `python -m smoke` with no
target named. `dragonfly-harness up` does the same steps with logs streamed and a demo.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.postgres.logins import ServiceLogins, close_service_logins, open_service_logins
from harness.postgres.sources import PostgresSource, open_server
from harness.stack.processes import ReferenceStack
from reference.db import apply_migrations
from reference.pooling import PREPARED_STATEMENTS_ENV, PreparedStatements

WORKERS = ("ingest", "enforcement")


@contextmanager
def local_stack(
    log_dir: Path,
    *,
    source: PostgresSource = PostgresSource.EMBEDDED,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ReferenceStack]:
    """A migrated Postgres with the API and both workers running; everything stops on exit.

    Raises PostgresSourceError, MigrationError or RuntimeError (a service did not start).
    """
    server = open_server(source)
    stack: ReferenceStack | None = None
    logins: ServiceLogins | None = None
    try:
        apply_migrations(server.admin_conninfo)  # direct, even behind the pooler source
        logins = open_service_logins(server.admin_conninfo)  # the services' least-privileged users
        stack = ReferenceStack(
            server.conninfo,
            log_dir,
            api_key=secrets.token_urlsafe(24),
            extra_env=dict(extra_env or {}),
            service_urls=logins.urls(server.conninfo) if logins else {},
        )
        if server.pooled:  # a default: the user's own DATABASE_PREPARED_STATEMENTS wins
            stack.default_env[PREPARED_STATEMENTS_ENV] = PreparedStatements.OFF.value
        stack.start_api()
        for kind in WORKERS:
            stack.start_worker(kind)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        close_service_logins(server.conninfo, logins)
        server.stop()
