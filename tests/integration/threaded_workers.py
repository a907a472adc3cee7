"""Workers running the real loop in threads of the test process, stopped at the block's end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reference.config import Settings
from reference.workers.loop import Worker, WorkerSpec

JOIN_TIMEOUT = 60  # seconds a stopping worker gets to finish its job in hand


@contextmanager
def running(settings: Settings, *specs: WorkerSpec) -> Iterator[list[Worker]]:
    """One worker per spec, each looping in its own thread until the block ends."""
    workers = [Worker(settings, spec, threading.Event()) for spec in specs]
    threads = [
        threading.Thread(target=worker.run, name=f"worker-{index}")
        for index, worker in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop.set()
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a worker did not stop"
