"""The job queue: a typed client over the ops.* SQL functions, its models and errors."""

from reference.jobqueue.client import (
    DEFAULT_LOCK_TIMEOUT,
    MAX_BATCH_SIZE,
    QueueClient,
    job_type_name,
)
from reference.jobqueue.errors import (
    InvalidArgumentError,
    QueueBusyError,
    QueueDatabaseError,
    QueueError,
    QueueUnavailableError,
    UnknownJobTypeError,
)
from reference.jobqueue.models import FailOutcome, Job, JobStatus, JobType, WorkerStatus

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MAX_BATCH_SIZE",
    "FailOutcome",
    "InvalidArgumentError",
    "Job",
    "JobStatus",
    "JobType",
    "QueueBusyError",
    "QueueClient",
    "QueueDatabaseError",
    "QueueError",
    "QueueUnavailableError",
    "UnknownJobTypeError",
    "WorkerStatus",
    "job_type_name",
]
