"""The load run's settings inside a Locust process: custom options and secret variables.

Non-secret settings are Locust options (`--run-id`, `--claim-batch-size`, ...): the master
sends them to its workers. Secrets come only from the environment, never from a command line
that `ps` would show: each Locust process, workers on other machines included, needs
DRAGONFLY_LOAD_DB_URL (and DRAGONFLY_API_KEY for the HTTP users).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reference.jobqueue import MAX_BATCH_SIZE

DB_URL_ENV = "DRAGONFLY_LOAD_DB_URL"
API_KEY_ENV = "DRAGONFLY_API_KEY"
DEFAULT_CLAIM_BATCH_SIZE = 1
DEFAULT_DRAIN_POLL = 0.5  # seconds between the master's checks for a drained queue


class LoadSettingsError(ValueError):
    """A load setting is missing or malformed; the message says how to fix it."""


def add_load_options(parser: Any) -> None:
    """Register the custom options on Locust's parser (`init_command_line_parser`)."""
    group = parser.add_argument_group("dragonfly load")
    group.add_argument("--run-id", default="", help="tag of this run's seeded jobs and records")
    group.add_argument(
        "--claim-batch-size",
        type=int,
        default=DEFAULT_CLAIM_BATCH_SIZE,
        help=f"jobs per claim_pending_job call (1-{MAX_BATCH_SIZE}); "
        "above 1, complete_jobs settles them",
    )
    group.add_argument(
        "--stop-when-drained",
        action="store_true",
        help="the master stops the run once every seeded job of --run-id is completed",
    )


@dataclass(frozen=True)
class LoadSettings:
    run_id: str
    claim_batch_size: int
    stop_when_drained: bool
    db_url: str | None

    @classmethod
    def from_options(cls, options: Any, environ: Mapping[str, str] | None = None) -> LoadSettings:
        env = os.environ if environ is None else environ
        batch = int(getattr(options, "claim_batch_size", DEFAULT_CLAIM_BATCH_SIZE))
        if not 1 <= batch <= MAX_BATCH_SIZE:
            raise LoadSettingsError(
                f"--claim-batch-size must be between 1 and {MAX_BATCH_SIZE} (got {batch})"
            )
        return cls(
            run_id=str(getattr(options, "run_id", "") or ""),
            claim_batch_size=batch,
            stop_when_drained=bool(getattr(options, "stop_when_drained", False)),
            db_url=env.get(DB_URL_ENV) or None,
        )

    def require_db_url(self) -> str:
        if not self.db_url:
            raise LoadSettingsError(
                f"{DB_URL_ENV} is not set: export the Postgres URL of the database under load "
                "(each Locust worker process needs it too)"
            )
        if not self.run_id:
            raise LoadSettingsError("--run-id is empty: pass the run id the seeder used")
        return self.db_url
