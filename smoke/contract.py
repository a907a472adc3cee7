"""The queue contract (SPEC §2) as the schema check expects to find it in a database."""

from __future__ import annotations

JOB_QUEUE_COLUMNS = (
    "id", "job_type", "payload", "status", "priority", "run_at", "attempts", "max_attempts",
    "locked_at", "locked_by", "last_error", "idempotency_key", "trace_context", "created_at",
    "updated_at", "completed_at", "dead_lettered_at", "reap_count",
)  # fmt: skip
JOB_STATUS_LABELS = ("pending", "processing", "completed", "failed")
# Each index by name, with a fragment its definition must contain.
JOB_QUEUE_INDEXES = {
    "job_queue_claim_idx": "status = 'pending'",
    "job_queue_processing_lease_idx": "status = 'processing'",
    "job_queue_idempotency_key_idx": "CREATE UNIQUE INDEX",
}
FUNCTIONS = (
    "queue_job", "claim_pending_job", "complete_job", "fail_job", "extend_lock",
    "reap_stuck_jobs", "register_heartbeat",
    "hold_lease",  # the workers' fenced commits (migration 0013): deploy it before them
)  # fmt: skip
RELATIONS = ("job_queue", "job_types", "worker_heartbeats", "v_queue_health", "v_worker_status")
JOB_TYPES = ("ingest_csv", "enforcement_strategy", "enforcement_drafting", "smoke_canary")
# The heartbeat worker_type of each worker (the workers check wants a live one of each).
WORKER_TYPES = ("ingest_processor", "enforcement_engine")
