-- Tables of the reference services: intake (batches, stored uploads, row errors), judgments,
-- what is known about each debtor, and the Enforcement Engine's plans and draft packets.

CREATE TYPE ops.ingest_batch_status AS ENUM ('queued', 'processing', 'completed', 'failed');

CREATE TABLE ops.ingest_batches (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    filename       text NOT NULL,
    file_sha256    text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    status         ops.ingest_batch_status NOT NULL DEFAULT 'queued',
    job_id         uuid REFERENCES ops.job_queue (id) ON DELETE SET NULL,
    total_rows     integer CHECK (total_rows >= 0),
    valid_rows     integer CHECK (valid_rows >= 0),
    invalid_rows   integer CHECK (invalid_rows >= 0),
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz
);
CREATE INDEX ingest_batches_sha256_idx ON ops.ingest_batches (file_sha256);

-- The uploaded file itself, kept apart from the batch row so listing batches stays cheap.
CREATE TABLE ops.ingest_uploads (
    batch_id   uuid PRIMARY KEY REFERENCES ops.ingest_batches (id) ON DELETE CASCADE,
    content    bytea NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ops.ingest_row_errors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    uuid NOT NULL REFERENCES ops.ingest_batches (id) ON DELETE CASCADE,
    row_number  integer NOT NULL CHECK (row_number >= 1),
    error_code  text NOT NULL CHECK (error_code ~ '^[a-z][a-z_]*$'),
    message     text NOT NULL,
    raw_row     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Re-running a batch records each problem once.
    UNIQUE (batch_id, row_number, error_code)
);

CREATE TABLE public.judgments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    case_number      text NOT NULL UNIQUE CHECK (btrim(case_number) <> ''),
    plaintiff        text NOT NULL CHECK (btrim(plaintiff) <> ''),
    defendant        text NOT NULL CHECK (btrim(defendant) <> ''),
    judgment_amount  numeric(14, 2) CHECK (judgment_amount >= 0),
    filing_date      date,
    county           text,
    source_batch_id  uuid REFERENCES ops.ingest_batches (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- What is known about the debtor of a judgment; the strategy rules read it.
CREATE TABLE public.debtor_profiles (
    judgment_id                 uuid PRIMARY KEY REFERENCES public.judgments (id) ON DELETE CASCADE,
    employer_name               text,
    employer_address            text,
    has_bank_account            boolean NOT NULL DEFAULT false,
    bank_name                   text,
    bank_account_benefits_only  boolean NOT NULL DEFAULT false,
    owns_home                   boolean NOT NULL DEFAULT false,
    property_address            text,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE SCHEMA IF NOT EXISTS enforcement;

CREATE TYPE enforcement.strategy AS ENUM (
    'wage_garnishment', 'bank_levy', 'property_lien', 'surveillance'
);

CREATE TABLE enforcement.plans (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    judgment_id  uuid NOT NULL UNIQUE REFERENCES public.judgments (id) ON DELETE CASCADE,
    strategy     enforcement.strategy NOT NULL,
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enforcement.draft_packets (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_id      uuid NOT NULL UNIQUE REFERENCES enforcement.plans (id) ON DELETE CASCADE,
    judgment_id  uuid NOT NULL REFERENCES public.judgments (id) ON DELETE CASCADE,
    strategy     enforcement.strategy NOT NULL,
    documents    jsonb NOT NULL CHECK (jsonb_typeof(documents) = 'array'),
    total_fees   numeric(10, 2) NOT NULL CHECK (total_fees >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
