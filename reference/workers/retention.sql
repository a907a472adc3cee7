-- name: prune_history
-- Delete completed and dead-lettered jobs and heartbeat rows past their retention ages, in
-- bounded batches; zeros when another worker is pruning right now.
SELECT completed, dead_lettered, heartbeats
FROM ops.prune_history(
    completed_age => %(completed_age)s,
    dead_lettered_age => %(dead_lettered_age)s,
    stopped_worker_age => %(stopped_worker_age)s,
    batch_size => %(batch_size)s
);
