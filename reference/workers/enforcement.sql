-- name: get_judgment
-- The judgment a plan or packet is for; no row when it does not exist.
SELECT case_number, plaintiff, defendant, judgment_amount, county
FROM public.judgments
WHERE id = %(judgment_id)s;

-- name: get_debtor_profile
-- What is known about the judgment's debtor (DebtorFacts' columns); no row when nothing is.
SELECT employer_name, employer_address, has_bank_account, bank_name,
       bank_account_benefits_only, owns_home, property_address
FROM public.debtor_profiles
WHERE judgment_id = %(judgment_id)s;

-- name: upsert_plan
-- One plan per judgment. updated_at (kept by the database) moves only when the decision changes,
-- so it is the plan's revision: the drafting job's key carries it, and a re-run enqueues nothing.
INSERT INTO enforcement.plans AS plan (judgment_id, strategy, reason)
VALUES (%(judgment_id)s, %(strategy)s::enforcement.strategy, %(reason)s)
ON CONFLICT (judgment_id) DO UPDATE
SET strategy = excluded.strategy,
    reason = excluded.reason
RETURNING
    plan.id,
    enforcement.drafting_idempotency_key(plan.id, plan.strategy, plan.updated_at) AS drafting_key;

-- name: get_plan_for_drafting
-- The judgment's plan, share-locked so a concurrent strategy change waits until the packet
-- matching this plan is stored (the drafting job that change enqueued then redrafts).
SELECT id, strategy
FROM enforcement.plans
WHERE judgment_id = %(judgment_id)s
FOR SHARE;

-- name: upsert_draft_packet
-- One packet per plan; drafting again replaces its documents and fees.
INSERT INTO enforcement.draft_packets AS packet
    (plan_id, judgment_id, strategy, documents, total_fees)
VALUES (%(plan_id)s, %(judgment_id)s, %(strategy)s::enforcement.strategy, %(documents)s,
        %(total_fees)s)
ON CONFLICT (plan_id) DO UPDATE
SET strategy = excluded.strategy,
    documents = excluded.documents,
    total_fees = excluded.total_fees
RETURNING packet.id;

-- name: log_effects
-- In the handler's transaction: what this run applied, one ops.effect_log row per effect (no
-- uniqueness: a second committed run of the job shows as a second row, see migration 0016).
INSERT INTO ops.effect_log (job_id, attempt, effect_kind, effect_key, worker_id)
SELECT %(job_id)s, %(attempt)s, effect.kind, effect.key, %(worker_id)s
FROM unnest(%(kinds)s::text[], %(keys)s::text[]) AS effect (kind, key);
