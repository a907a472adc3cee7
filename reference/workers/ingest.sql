-- name: start_batch
-- Mark the batch processing in its own transaction, so the API shows progress; no row: missing.
UPDATE ops.ingest_batches
SET status = 'processing', started_at = clock_timestamp(), finished_at = NULL, error = NULL
WHERE id = %(batch_id)s
RETURNING id;

-- name: upload_size
-- The stored file's size in bytes; no row when the batch has no stored upload.
SELECT octet_length(content) FROM ops.ingest_uploads WHERE batch_id = %(batch_id)s;

-- name: read_upload_chunk
-- One slice of the stored file (start is 1-based), so the file is never in memory whole.
SELECT substring(content FROM %(start)s FOR %(length)s)
FROM ops.ingest_uploads
WHERE batch_id = %(batch_id)s;

-- name: configure_transaction
-- For this transaction only: room in memory for the duplicate check's hash, the checked rows
-- and the upsert's sort, and month-first dates (3/4/2024 is March 4; ISO dates read the same
-- either way).
SELECT set_config('work_mem', %(work_mem)s, true), set_config('datestyle', 'ISO, MDY', true);

-- name: create_stage
-- The rows as read, trimmed text, one per data row, with the id the row's judgment gets if it
-- is new (random, made by the reader: gen_random_uuid() per row costs more); dropped at commit.
CREATE TEMP TABLE ingest_stage (
    row_number       integer NOT NULL,
    case_number      text,
    plaintiff        text,
    defendant        text,
    judgment_amount  text,
    filing_date      text,
    county           text,
    id               uuid NOT NULL
) ON COMMIT DROP;

-- name: create_rejected
-- Rows the parser could not stage (wrong field count, broken CSV, not text), with messages.
CREATE TEMP TABLE ingest_rejected (
    row_number  integer NOT NULL,
    error_code  text NOT NULL,
    message     text NOT NULL,
    raw_row     text
) ON COMMIT DROP;

-- name: copy_rows
-- Staged rows in COPY text format (an empty field is NULL), from a file with a County column.
COPY ingest_stage (
    row_number, case_number, plaintiff, defendant, judgment_amount, filing_date, county, id
) FROM STDIN (FORMAT text, NULL '');

-- name: copy_rows_without_county
-- The same from a file without a County column (it is optional).
COPY ingest_stage (
    row_number, case_number, plaintiff, defendant, judgment_amount, filing_date, id
) FROM STDIN (FORMAT text, NULL '');

-- name: copy_rejected
-- Rejected rows, written one by one (they are few, and rare).
COPY ingest_rejected (row_number, error_code, message, raw_row) FROM STDIN;

-- name: load_rows
-- Validate every staged row, record each problem of each row and upsert the valid rows, all
-- in ONE statement: the checked rows are kept in memory, not written to a table and read back.
-- Returns (valid rows, judgments inserted or changed).
-- A case number's identity is its key: trimmed (the reader trims every field) and lower-cased,
-- as in public.judgment_case_keys (migration 0014); the judgment keeps its first spelling.
-- repeated: case keys found more than once, and the first row, which wins (a hash
-- aggregate: a window partitioned by case number costs far more for 100k one-row partitions)
WITH repeated AS (
    SELECT lower(case_number) AS case_key, min(row_number) AS first_row
    FROM ingest_stage
    WHERE case_number IS NOT NULL
    GROUP BY lower(case_number)
    HAVING count(*) > 1
),
-- parsed: values only where the pattern holds, so no cast can fail and abort the batch
-- (DateStyle is MDY for this transaction: 3/4/2024 is March 4). MATERIALIZED: inlined, each
-- pattern and cast would run again at every later mention of its column.
-- The judgment a row updates: the one holding its key (in the spelling stored first), else one
-- stored under exactly this spelling without a key (from before 0014, or written by hand), else
-- a new one with the reader's id. Rows whose key is missing add it below; a key whose judgment
-- was deleted (stale) is re-pointed.
parsed AS MATERIALIZED (
    SELECT
        s.*,
        r.first_row,
        lower(s.case_number) AS case_key,
        coalesce(kj.case_number, s.case_number) AS stored_case_number,
        coalesce(kj.id, ej.id, s.id) AS judgment_id,
        k.case_key IS NULL AS key_missing,
        k.case_key IS NOT NULL AND kj.id IS NULL AS key_stale,
        CASE
            WHEN s.judgment_amount ~ '^\$?\s*(\d{1,12}|\d{1,3}(,\d{3}){1,3})(\.\d{1,2})?$'
            THEN translate(s.judgment_amount, '$, ', '')::numeric(14, 2)
        END AS amount,
        CASE
            WHEN s.filing_date ~ '^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{1,2}-\d{1,2})$'
                 AND pg_input_is_valid(s.filing_date, 'date')
            THEN s.filing_date::date
        END AS filed_on
    FROM ingest_stage AS s
    LEFT JOIN repeated AS r ON r.case_key = lower(s.case_number)
    LEFT JOIN public.judgment_case_keys AS k ON k.case_key = lower(s.case_number)
    LEFT JOIN public.judgments AS kj ON kj.id = k.judgment_id
    LEFT JOIN public.judgments AS ej ON kj.id IS NULL AND ej.case_number = s.case_number
),
errors AS (
    SELECT
        parsed.*,
        CASE
            WHEN case_number IS NULL THEN 'missing_case_number'
            WHEN first_row < row_number THEN 'duplicate_case_number'
        END AS case_error,
        CASE WHEN plaintiff IS NULL THEN 'missing_plaintiff' END AS plaintiff_error,
        CASE WHEN defendant IS NULL THEN 'missing_defendant' END AS defendant_error,
        CASE
            WHEN judgment_amount IS NULL THEN 'missing_amount'
            WHEN amount IS NULL THEN 'invalid_amount'
        END AS amount_error,
        CASE
            WHEN filing_date IS NULL THEN 'missing_filing_date'
            WHEN filed_on IS NULL OR filed_on < %(earliest_date)s OR filed_on > current_date
            THEN 'invalid_date'
        END AS date_error,
        CASE
            WHEN greatest(
                length(case_number), length(plaintiff), length(defendant),
                length(judgment_amount), length(filing_date), length(county)
            ) > %(max_field_length)s
            THEN 'field_too_long'
        END AS length_error
    FROM parsed
),
-- checked: each row once, an *_error column holding an error code or NULL; MATERIALIZED: the
-- row errors, the upsert and the count below all read it
checked AS MATERIALIZED (
    SELECT
        row_number, judgment_id, case_key, stored_case_number, key_missing, key_stale, case_number,
        plaintiff, defendant, county,
        judgment_amount AS amount_text, filing_date AS date_text, amount, filed_on, first_row,
        case_error, plaintiff_error, defendant_error, amount_error, date_error, length_error,
        num_nonnulls(
            case_error, plaintiff_error, defendant_error, amount_error, date_error, length_error
        ) = 0 AS valid
    FROM errors
),
-- Every problem of every row, once per (batch, row, code), with a message saying how to fix it.
row_errors AS (
    INSERT INTO ops.ingest_row_errors (batch_id, row_number, error_code, message, raw_row)
    SELECT %(batch_id)s, r.row_number, r.error_code, r.message, r.raw_row
    FROM ingest_rejected AS r
    UNION ALL
    SELECT %(batch_id)s, c.row_number, e.error_code, e.message, NULL
    FROM checked AS c
    CROSS JOIN LATERAL (
        VALUES
        (
            c.case_error,
            CASE c.case_error
                WHEN 'missing_case_number'
                THEN 'Case Number is empty: every row needs the court''s case number, '
                     || 'e.g. CV-2024-001234'
                ELSE 'Case Number ' || quote_literal(left(c.case_number, 60)) || ' repeats row '
                     || c.first_row || ': the first row wins; remove this row or correct its '
                     || 'case number'
            END
        ),
        (c.plaintiff_error, 'Plaintiff is empty: fill in the creditor''s name'),
        (c.defendant_error, 'Defendant is empty: fill in the debtor''s name'),
        (
            c.amount_error,
            CASE
                WHEN c.amount_error = 'missing_amount'
                THEN 'Judgment Amount is empty: enter the amount awarded, e.g. $1,234.56'
                ELSE 'Judgment Amount ' || quote_literal(left(c.amount_text, 60)) || CASE
                    WHEN c.amount_text ~ '^[-(]|^\$\s*[-(]'
                    THEN ' is negative: enter the amount awarded without a minus sign or '
                         || 'parentheses'
                    WHEN c.amount_text ~ '\.\d{3,}$'
                    THEN ' has more than 2 decimal places: round it to whole cents, '
                         || 'e.g. $1,234.56'
                    WHEN c.amount_text ~ '[[:alpha:]]'
                    THEN ' contains letters: use digits, an optional $ and thousands commas, '
                         || 'e.g. $1,234.56'
                    WHEN c.amount_text ~ '^\$?\s*[\d,]+(\.\d{1,2})?$'
                         AND length(split_part(translate(c.amount_text, '$, ', ''), '.', 1)) > 12
                    THEN ' is larger than $999,999,999,999.99: check for a missing decimal point'
                    ELSE ' is not a money amount: write it like $1,234.56, 1234.56 or 1234'
                END
            END
        ),
        (
            c.date_error,
            CASE
                WHEN c.date_error = 'missing_filing_date'
                THEN 'Filing Date is empty: enter the date the judgment was filed, as '
                     || 'MM/DD/YYYY or YYYY-MM-DD'
                ELSE 'Filing Date ' || quote_literal(left(c.date_text, 60)) || CASE
                    WHEN c.date_text !~ '^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{1,2}-\d{1,2})$'
                    THEN ' is not written as MM/DD/YYYY or YYYY-MM-DD: use e.g. 03/15/2024 '
                         || 'or 2024-03-15'
                    WHEN c.filed_on IS NULL
                    THEN ' is not a real calendar date: check the month and the day'
                    WHEN c.filed_on > current_date
                    THEN ' is in the future: check the year'
                    ELSE ' is before ' || %(earliest_date)s || ': check the year'
                END
            END
        ),
        (
            c.length_error,
            'Too long (more than ' || %(max_field_length)s || ' characters): ' || concat_ws(
                ', ',
                CASE WHEN length(c.case_number) > %(max_field_length)s THEN 'Case Number' END,
                CASE WHEN length(c.plaintiff) > %(max_field_length)s THEN 'Plaintiff' END,
                CASE WHEN length(c.defendant) > %(max_field_length)s THEN 'Defendant' END,
                CASE WHEN length(c.amount_text) > %(max_field_length)s THEN 'Judgment Amount' END,
                CASE WHEN length(c.date_text) > %(max_field_length)s THEN 'Filing Date' END,
                CASE WHEN length(c.county) > %(max_field_length)s THEN 'County' END
            ) || '. Shorten the value, or check that every double quote in the row is closed'
        )
    ) AS e (error_code, message)
    WHERE NOT c.valid AND e.error_code IS NOT NULL
    ON CONFLICT (batch_id, row_number, error_code) DO NOTHING
),
-- The valid rows into public.judgments; an unchanged judgment is left alone (no dead tuple).
-- Sorted by case number so two batches touching the same judgments lock them in one order.
upserted AS (
    INSERT INTO public.judgments AS j (
        id, case_number, plaintiff, defendant, judgment_amount, filing_date, county,
        source_batch_id
    )
    SELECT
        judgment_id, stored_case_number, plaintiff, defendant, amount, filed_on, county,
        %(batch_id)s
    FROM checked
    WHERE valid
    ORDER BY stored_case_number
    ON CONFLICT (case_number) DO UPDATE
    SET plaintiff = excluded.plaintiff,
        defendant = excluded.defendant,
        judgment_amount = excluded.judgment_amount,
        filing_date = excluded.filing_date,
        county = excluded.county,
        source_batch_id = excluded.source_batch_id
    WHERE (j.plaintiff, j.defendant, j.judgment_amount, j.filing_date, j.county)
        IS DISTINCT FROM
        (excluded.plaintiff, excluded.defendant, excluded.judgment_amount, excluded.filing_date,
         excluded.county)
    RETURNING 1
),
-- The key of each judgment this batch created or found unkeyed. No ON CONFLICT: a batch that
-- created the same case in another spelling concurrently makes this a unique violation, the
-- job is retried, and the retry finds that judgment by its key.
keyed AS (
    INSERT INTO public.judgment_case_keys (case_key, judgment_id)
    SELECT case_key, judgment_id
    FROM checked
    WHERE valid AND key_missing
),
repointed AS (
    UPDATE public.judgment_case_keys AS k
    SET judgment_id = c.judgment_id
    FROM checked AS c
    WHERE c.valid AND c.key_stale AND k.case_key = c.case_key
)
SELECT (SELECT count(*) FROM checked WHERE valid), (SELECT count(*) FROM upserted);

-- name: finish_batch
-- Completed, with its counts: total = staged + rejected by the parser; invalid = the rest.
UPDATE ops.ingest_batches
SET status = 'completed',
    total_rows = %(staged)s + %(rejected)s,
    valid_rows = %(valid)s,
    invalid_rows = %(staged)s + %(rejected)s - %(valid)s,
    error = NULL,
    finished_at = clock_timestamp()
WHERE id = %(batch_id)s
RETURNING total_rows, valid_rows, invalid_rows;

-- name: fail_batch
-- A file that cannot be read at all (no usable header, no stored upload): failed, with why.
UPDATE ops.ingest_batches
SET status = 'failed', error = %(error)s, total_rows = NULL, valid_rows = NULL,
    invalid_rows = NULL, finished_at = clock_timestamp()
WHERE id = %(batch_id)s;

-- name: log_effect
-- In the batch's transaction: this run ingested the batch (ops.effect_log, migration 0016).
INSERT INTO ops.effect_log (job_id, attempt, effect_kind, effect_key, worker_id)
VALUES (%(job_id)s, %(attempt)s, 'ingest_batch', %(batch_id)s::text, %(worker_id)s);
