"""Locust event hooks: the custom options, the drain watcher and the flush of the records."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import psycopg
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.options import DEFAULT_DRAIN_POLL, LoadSettings, add_load_options
from loadtests.process_state import recorder_for
from loadtests.sql import query
from reference.pooling import connect_kwargs

logger = logging.getLogger(__name__)
DRAIN_WATCH_LIMIT = 24 * 3600  # seconds: the watcher never outlives a day even if forgotten


def _options(parser: Any, **_kwargs: Any) -> None:
    add_load_options(parser)


def watch_drain(environment: Environment, settings: LoadSettings) -> None:
    """Quit the run, as Locust's --run-time does, once no seeded job is left unfinished."""
    db_url = settings.require_db_url()
    with psycopg.connect(
        db_url, autocommit=True, application_name="load-drain-watch", **connect_kwargs(db_url)
    ) as conn:
        for _ in range(int(DRAIN_WATCH_LIMIT / DEFAULT_DRAIN_POLL)):
            time.sleep(DEFAULT_DRAIN_POLL)  # gevent-patched: yields to the users
            row = conn.execute(query("any_unfinished"), {"run_id": settings.run_id}).fetchone()
            if row is not None and not row[0]:
                break
    logger.info("every seeded job of run %s is completed: stopping", settings.run_id)
    runner = environment.runner
    if runner is not None:
        # quit(), not stop(): a worker told to stop sleeps through the master's later quit.
        runner.quit()


def _start(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    settings = LoadSettings.from_options(environment.parsed_options)
    if settings.stop_when_drained:
        # Under Locust, threading is gevent-patched: this is a greenlet beside the users.
        threading.Thread(target=watch_drain, args=(environment, settings), daemon=True).start()


def _flush(environment: Environment, **_kwargs: Any) -> None:
    """Write this process's claims and timings, then say so, before it reports itself stopped."""
    if isinstance(environment.runner, MasterRunner):
        return  # the master runs no users
    settings = LoadSettings.from_options(environment.parsed_options)
    recorder = recorder_for(settings.run_id)
    db_url = settings.require_db_url()
    with psycopg.connect(db_url, autocommit=True, **connect_kwargs(db_url)) as conn:
        claims, operations = recorder.flush(conn)
        conn.execute(
            query("process_flushed"),
            {
                "run_id": settings.run_id,
                "process": f"{socket.gethostname()}-{os.getpid()}",
                "claims": claims,
                "operations": operations,
            },
        )
    logger.info("recorded %d claims and %d operations", claims, operations)


# Locust's EventHook.add_listener carries no annotations.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_flush)  # type: ignore[no-untyped-call]
