"""The peer queues draining the same no-op jobs, each configured for its best throughput.

pgqueuer with asyncpg (its fastest driver), 5 queue managers fetching batches of 10; and
procrastinate with one worker at concurrency 16. Both come from the `bench` extra and are
imported only here, when the benchmark runs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

PGQUEUER_MANAGERS = 5
PGQUEUER_BATCH = 10
PROCRASTINATE_CONCURRENCY = 16
MISSING = "the peer queues come with the bench extra: pip install 'dragonfly-harness[bench]'"


class PeerUnavailableError(RuntimeError):
    """A peer queue's package is not installed."""


def pgqueuer_install(url: str) -> None:
    async def install() -> None:
        import asyncpg  # noqa: PLC0415 - optional (bench extra)
        from pgqueuer.db import AsyncpgDriver  # noqa: PLC0415
        from pgqueuer.queries import Queries  # noqa: PLC0415

        conn = await asyncpg.connect(url)
        try:
            await Queries(AsyncpgDriver(conn)).install()
        finally:
            await conn.close()

    _run(install())


def pgqueuer_drain(url: str, jobs: int) -> float:
    """Seconds for the managers to drain `jobs` freshly enqueued no-op jobs."""

    async def drain() -> float:
        import asyncpg  # noqa: PLC0415
        from pgqueuer.db import AsyncpgDriver  # noqa: PLC0415
        from pgqueuer.domain.types import QueueExecutionMode  # noqa: PLC0415
        from pgqueuer.qm import QueueManager  # noqa: PLC0415
        from pgqueuer.queries import Queries  # noqa: PLC0415

        setup = await asyncpg.connect(url)
        await Queries(AsyncpgDriver(setup)).enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)
        await setup.execute("VACUUM ANALYZE pgqueuer")
        await setup.close()
        conns = [await asyncpg.connect(url) for _ in range(PGQUEUER_MANAGERS)]
        managers = []
        for conn in conns:
            manager = QueueManager(Queries(AsyncpgDriver(conn)))

            async def noop(_job: Any) -> None:
                return None

            manager.entrypoint("noop")(noop)
            managers.append(manager)
        began = time.perf_counter()
        await asyncio.gather(
            *(
                manager.run(
                    batch_size=PGQUEUER_BATCH,
                    mode=QueueExecutionMode.drain,
                    dequeue_timeout=timedelta(seconds=1),
                )
                for manager in managers
            )
        )
        elapsed = time.perf_counter() - began
        for conn in conns:
            await conn.close()
        return elapsed

    return float(_run(drain()))


def procrastinate_install(url: str) -> None:
    async def install() -> None:
        import procrastinate  # noqa: PLC0415 - optional (bench extra)

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    _run(install())


def procrastinate_drain(url: str, jobs: int) -> float:
    """Seconds for one worker at concurrency 16 to drain `jobs` freshly deferred no-op jobs."""

    async def drain() -> float:
        import procrastinate  # noqa: PLC0415

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

        async def noop() -> None:
            return None

        task = app.task(name="noop")(noop)
        async with app.open_async():
            await task.batch_defer_async(*([{}] * jobs))
            began = time.perf_counter()
            await app.run_worker_async(
                concurrency=PROCRASTINATE_CONCURRENCY, wait=False, install_signal_handlers=False
            )
            return time.perf_counter() - began

    return float(_run(drain()))


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except ImportError as error:
        raise PeerUnavailableError(f"{MISSING} ({error})") from None
