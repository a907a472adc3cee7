"""A throwaway PostgreSQL in a Docker container, started with testcontainers."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from harness.network import free_port
from harness.postgres.server import TEST_SERVER_SETTINGS, PostgresServer, PostgresSourceError
from harness.waiting import wait_until

DEFAULT_IMAGE = "postgres:18"  # the official image, what users' CI pulls
RYUK_IMAGE_PREFIX = "testcontainers/ryuk"
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKER_PING_TIMEOUT = 3  # seconds; an engine that does not answer by then is not there
# The same throwaway tuning as the embedded server: nothing here must survive a crash.
SERVER_COMMAND = "postgres " + " ".join(f"-c {setting}" for setting in TEST_SERVER_SETTINGS)
# The data directory lives in memory, as the embedded server's page cache effectively does: on
# the engine's overlay filesystem every per-test CREATE DATABASE ... TEMPLATE copy is 10x slower.
# Mounted one level above PGDATA and owned by uid 999 (postgres in the official image and in the
# offline one), so the official entrypoint (PGDATA=/var/lib/postgresql/18/docker) and the offline
# image's (PGDATA=/var/lib/postgresql/data) can both create the data directory.
DATA_TMPFS = {"/var/lib/postgresql": "rw,uid=999,gid=999,mode=0755,size=2g"}
RESTART_TIMEOUT = 60.0  # seconds for a restarted container to accept connections again


def docker_client() -> Any:
    """A docker-py client whose engine answered a ping, or PostgresSourceError saying why not."""
    host = os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_SOCKET)
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        # Checked first: docker-py leaks a socket when its constructor cannot reach the engine.
        raise PostgresSourceError(
            f"container: no Docker engine answers (no socket at {host}); "
            "start one or set DOCKER_HOST"
        )
    try:
        import docker  # noqa: PLC0415 - optional at import time: only this source needs it

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT)
    except Exception as error:
        raise PostgresSourceError(
            f"container: no Docker engine answers ({type(error).__name__}: {error}); "
            "start one or set DOCKER_HOST"
        ) from error
    try:
        client.ping()
    except Exception as error:
        client.close()
        raise PostgresSourceError(
            f"container: no Docker engine answers ({type(error).__name__}: {error}); "
            "start one or set DOCKER_HOST"
        ) from error
    return client


def _require_image(client: Any, image: str) -> None:
    import docker.errors  # noqa: PLC0415

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(image)
    except docker.errors.APIError as error:
        raise PostgresSourceError(
            f"container: image {image!r} is not on this machine and cannot be pulled "
            f"({error.explanation or error}); build the offline image with "
            "`dragonfly-harness build-pg-image` and pass "
            "--pg-image=dragonfly-harness/postgres:18-local (or DRAGONFLY_PG_IMAGE)"
        ) from error


def _disable_ryuk_unless_present(client: Any) -> None:
    """Ryuk (the reaper) is pulled like any image; with no registry and no local copy, skip it."""
    from testcontainers.core.config import testcontainers_config  # noqa: PLC0415

    if testcontainers_config.ryuk_disabled:
        return
    if not client.images.list(name=testcontainers_config.ryuk_image.split(":")[0]):
        # The harness stops its container itself at the end of the session.
        testcontainers_config.ryuk_disabled = True


@dataclass
class RestartableContainer:
    """A durable container's stop and start, for crash_and_restart (RestartableServer)."""

    container: Any  # docker-py's Container
    conninfo: str

    def stop(self, mode: str = "fast") -> None:
        """Mode "immediate": SIGKILL to the postmaster, a power cut; else a clean `docker stop`."""
        if mode == "immediate":
            self.container.kill()
        else:
            self.container.stop()
        self.container.wait()

    def start(self) -> None:
        """`docker start`, then wait until it accepts connections on the same host port."""
        self.container.start()

        def accepts() -> bool:
            try:
                with psycopg.connect(self.conninfo, connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False

        wait_until("the restarted container to accept connections", accepts, RESTART_TIMEOUT, 0.2)


def start_container(image: str = DEFAULT_IMAGE, *, durable: bool = False) -> PostgresServer:
    """Start `image` with testcontainers and return the server inside it.

    `durable`: the data directory on the container's own disk instead of tmpfs and a fixed host
    port, so the server can be stopped and started again (crash_and_restart) keeping its data and
    address; slower per clone, meant for a fault test's own container.
    """
    client = docker_client()
    try:
        _require_image(client, image)
        _disable_ryuk_unless_present(client)
    finally:
        client.close()
    from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

    password = secrets.token_urlsafe(18)
    container = PostgresContainer(
        image, username="postgres", password=password, dbname="postgres", driver=None
    ).with_command(SERVER_COMMAND)
    if durable:
        # A bound host port survives `docker stop`/`start`; a published random one may not.
        container.with_bind_ports(5432, free_port())
    else:
        container.tmpfs.update(DATA_TMPFS)  # with_tmpfs_mount() takes a size, not mount options
    container.with_kwargs(shm_size="256m")

    def stop() -> None:
        try:
            container.stop()
        finally:
            # testcontainers keeps its own docker-py client open; close its socket with it.
            container.get_docker_client().client.close()

    started = time.monotonic()
    try:
        container.start()
    except Exception as error:
        stop()
        raise PostgresSourceError(
            f"container: {image!r} did not become ready: {type(error).__name__}: {error}"
        ) from error
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5432)
    elapsed = time.monotonic() - started
    conninfo = f"postgresql://postgres:{password}@{host}:{port}/postgres"
    wrapped = container.get_wrapped_container()
    kind = "durable container" if durable else "container"
    return PostgresServer(
        source="container",
        conninfo=conninfo,
        description=f"{kind} {image} on {host}:{port}, started in {elapsed:.2f} s",
        _stop=stop,
        _process=RestartableContainer(wrapped, conninfo) if durable else None,
        container_id=wrapped.id,
    )
