"""The cases of `dragonfly-harness bench-claim`: their sizes, pgbench scripts and labels."""

from __future__ import annotations

from harness.bench import peers

PGBENCH_SECONDS = 5
SINGLE_SECONDS = 3.0  # one-job-per-claim cases run for this long on a 20,000-job backlog
DRAIN_JOBS = 10_000  # jobs each batch drain and pgqueuer empty
PROCRASTINATE_JOBS = 1_000  # procrastinate drains ~200/s: fewer, or a repetition takes a minute
BACKLOG = 20_000
UPDATE_SCRIPT = "\\set id random(1, 20000)\nUPDATE bench_row SET n = n + 1 WHERE id = :id;\n"
OURS_SCRIPT = (
    "SELECT id AS job FROM ops.claim_pending_job('{load_probe}', 'pgbench-' || :client_id) \\gset\n"
    "SELECT ops.complete_job(:job, 'pgbench-' || :client_id);\n"
)
COMBINED_SCRIPT = (
    "SELECT id AS job FROM ops.complete_job_and_claim(:job, 'pgbench-' || :client_id, "
    "'{load_probe}') WHERE status = 'processing' \\gset\n"
)
OURS_PGBENCH = "our claim_pending_job + complete_job as a pgbench script, 32 clients"
# complete_job_and_claim's first call in a pgbench client completes no job: an id no job has.
NO_JOB_YET = {"job": "00000000-0000-0000-0000-000000000000"}
COMBINED_PGBENCH = "our complete_job_and_claim as a pgbench script, 32 clients"
COMBINED = {n: f"complete_job_and_claim, one job per call, {n} thread(s)" for n in (1, 4, 16, 32)}
PACED_WORK = 0.01  # seconds of (sleeping) work per job: latency below saturation
# A call's latency at 16 claimers: as fast as they go (the share None), then paced at a share
# of that repetition's unpaced rate: the latency a user sees below saturation.
LATENCY = {
    None: "complete_job_and_claim, 16 pgbench clients (no client GIL)",
    0.5: "complete_job_and_claim, 16 pgbench clients paced at 1/2 that rate",
    0.25: "complete_job_and_claim, 16 pgbench clients paced at 1/4 that rate",
}
PACED = {
    False: "claim + complete_job, 16 threads, 10 ms of work per job",
    True: "complete_job_and_claim, 16 threads, 10 ms of work per job",
}
SINGLE = {n: f"claim + complete_job, one job per claim, {n} thread(s)" for n in (1, 4, 16, 32)}
BATCH = {
    (b, n): f"batch claim of {b} + complete_jobs, {n} threads" for b in (10, 100) for n in (4, 32)
}
PGQUEUER = f"pgqueuer (asyncpg, {peers.PGQUEUER_MANAGERS} managers, batch {peers.PGQUEUER_BATCH})"
PROCRASTINATE = f"procrastinate (1 worker, concurrency {peers.PROCRASTINATE_CONCURRENCY})"
HELD = "20,000 pending while another session holds a transaction open"
