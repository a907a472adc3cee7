-- The effect log: one row per committed application of a handler's effect, written inside the
-- handler's own transaction (so a rolled-back run leaves none and a committed one cannot lose
-- it). There is deliberately no uniqueness: a handler that ran and committed twice writes two
-- rows, which the fault audit (harness/faults/audit.py) counts as a re-application, and as a
-- duplicated visible effect when the two runs of one job produced different effect keys (two
-- drafting jobs instead of one, say). The effect tables themselves (enforcement.plans,
-- draft_packets) are unique per judgment and cannot show that.
--
-- effect_key names what the application produced: the plan's id, the drafting job's id, the
-- packet's id, the ingest batch's id. Rows go with their job: ops.prune_history deletes old
-- jobs and the foreign key's cascade deletes their effect rows in the same statement.

CREATE TABLE ops.effect_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES ops.job_queue (id) ON DELETE CASCADE,
    attempt      bigint NOT NULL CHECK (attempt >= 1),
    effect_kind  text NOT NULL CHECK (effect_kind ~ '^[a-z][a-z_]*$'),
    effect_key   text NOT NULL,
    worker_id    text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX effect_log_job_id_idx ON ops.effect_log (job_id);

COMMENT ON TABLE ops.effect_log IS
    'Every committed application of a handler''s effect (job, attempt, kind, key); no '
    'uniqueness, so a handler that committed twice shows twice.';

-- Workers append; nobody else reads or writes it (the audit runs as the owner).
GRANT INSERT ON ops.effect_log TO dragonfly_worker;
ALTER TABLE ops.effect_log ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY dragonfly_services ON ops.effect_log FOR INSERT
    TO dragonfly_worker WITH CHECK (true);
