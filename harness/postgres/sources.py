"""Choose a Postgres source: external URL, testcontainers, embedded, or embedded behind PgBouncer
(pooler); auto tries external, container, embedded in turn."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from harness.postgres.container import DEFAULT_IMAGE, start_container
from harness.postgres.embedded import start_embedded
from harness.postgres.external import use_external
from harness.postgres.pooler import start_pooled_embedded
from harness.postgres.server import PostgresServer, PostgresSourceError


class PostgresSource(StrEnum):
    AUTO = "auto"
    CONTAINER = "container"
    EMBEDDED = "embedded"
    EXTERNAL = "external"
    POOLER = "pooler"


class NoPostgresSourceError(PostgresSourceError):
    """No source could provide a Postgres server."""


def open_server(
    source: PostgresSource,
    *,
    url: str | None = None,
    direct_url: str | None = None,
    image: str | None = None,
    data_root: Path | None = None,
) -> PostgresServer:
    """A running server from `source`; AUTO tries external (given a URL), container, embedded."""
    if source is PostgresSource.EXTERNAL:
        if not url:
            raise NoPostgresSourceError(
                "external: no URL given; pass --pg-url or set DRAGONFLY_PG_URL"
            )
        return use_external(url, direct_url)
    if source is PostgresSource.POOLER:
        return start_pooled_embedded(data_root)
    if source is PostgresSource.CONTAINER:
        return start_container(image or DEFAULT_IMAGE)
    if source is PostgresSource.EMBEDDED:
        return start_embedded(data_root)
    attempts: list[Callable[[], PostgresServer]] = [
        *([lambda: use_external(url, direct_url)] if url else []),
        lambda: start_container(image or DEFAULT_IMAGE),
        lambda: start_embedded(data_root),
    ]
    failures = []
    for attempt in attempts:
        try:
            return attempt()
        except PostgresSourceError as error:
            failures.append(str(error).splitlines()[0])
    tried = "\n".join(f"  - {failure}" for failure in failures)
    raise NoPostgresSourceError(f"no Postgres source is available; tried:\n{tried}")
