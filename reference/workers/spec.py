"""What makes one worker (its name, job types and handlers), and the probe every worker runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reference.jobqueue import Job, JobType
from reference.workers.context import Handler, JobContext


@dataclass(frozen=True)
class WorkerSpec:
    """What makes one worker: its name, job types, default poll interval and handlers."""

    title: str  # as printed at start: "Ingest Processor"
    worker_type: str  # heartbeat worker_type and service name suffix: "ingest_processor"
    default_poll_interval: float  # seconds, when WORKER_POLL_INTERVAL is unset
    handlers: Mapping[JobType, Handler]

    @property
    def job_types(self) -> list[JobType]:
        return list(self.handlers)


def handle_smoke_canary(job: Job, context: JobContext) -> None:
    """The smoke suite's canary carries no work: its completion proves a worker is claiming."""


# Every worker also claims the canary (not named in the seed's start line): `python -m smoke
# --canary` enqueues one and waits for a live worker to complete it.
PROBE_HANDLERS: Mapping[JobType, Handler] = {JobType.SMOKE_CANARY: handle_smoke_canary}
