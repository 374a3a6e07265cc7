-- Customer ledger (charges, payments, credit notes, interest; balance = sum of amounts, a
-- positive balance is debt), FIFO payment allocations, dunning documents, the notification
-- outbox written in the same transaction as the document it announces, and job runs.

-- mode: all
CREATE TABLE ledger_entries (
    entry_id    bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    kind        text NOT NULL CHECK (kind IN ('charge', 'payment', 'credit_note', 'interest')),
    amount_gr   bigint NOT NULL,
    booked_on   date NOT NULL,
    due_date    date,
    invoice_id  bigint REFERENCES invoices,
    reference   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind NOT IN ('charge', 'interest') OR (amount_gr >= 0 AND due_date IS NOT NULL)),
    CHECK (kind NOT IN ('payment', 'credit_note') OR amount_gr <= 0)
);
CREATE UNIQUE INDEX ledger_one_entry_per_invoice ON ledger_entries (invoice_id)
    WHERE invoice_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_payment_reference ON ledger_entries (reference)
    WHERE kind = 'payment';
CREATE INDEX ledger_customer ON ledger_entries (customer_id, booked_on);

CREATE TABLE payment_allocations (
    payment_id bigint NOT NULL REFERENCES ledger_entries,
    charge_id  bigint NOT NULL REFERENCES ledger_entries,
    amount_gr  bigint NOT NULL CHECK (amount_gr > 0),
    settled_on date NOT NULL,
    PRIMARY KEY (payment_id, charge_id)
);
CREATE INDEX payment_allocations_charge ON payment_allocations (charge_id);

CREATE TABLE payment_reminders (
    charge_id  bigint PRIMARY KEY REFERENCES ledger_entries,
    sent_on    date NOT NULL,
    amount_gr  bigint NOT NULL
);

CREATE TABLE payment_demands (
    demand_id   bigserial PRIMARY KEY,
    charge_id   bigint NOT NULL UNIQUE REFERENCES ledger_entries,
    customer_id bigint NOT NULL REFERENCES customers,
    issued_on   date NOT NULL,
    overdue_gr  bigint NOT NULL CHECK (overdue_gr > 0),
    pay_by      date NOT NULL
);

CREATE TABLE interest_notes (
    note_id     bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    issued_on   date NOT NULL,
    amount_gr   bigint NOT NULL CHECK (amount_gr > 0),
    entry_id    bigint REFERENCES ledger_entries,
    UNIQUE (customer_id, month)
);

CREATE TABLE interest_note_items (
    note_id    bigint NOT NULL REFERENCES interest_notes ON DELETE CASCADE,
    charge_id  bigint NOT NULL REFERENCES ledger_entries,
    payment_id bigint NOT NULL REFERENCES ledger_entries,
    days       int NOT NULL CHECK (days > 0),
    amount_gr  bigint NOT NULL CHECK (amount_gr >= 0),
    PRIMARY KEY (charge_id, payment_id)
);

-- A notice to deliver; dedup_key makes a re-run write it once.
CREATE TABLE outbox (
    outbox_id   bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('invoice_issued', 'payment_reminder',
                                              'payment_demand', 'interest_note')),
    customer_id bigint NOT NULL REFERENCES customers,
    dedup_key   text NOT NULL UNIQUE,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

-- One row per job execution; the job's advisory lock keeps two schedulers from overlapping.
CREATE TABLE job_runs (
    job_run_id  bigserial PRIMARY KEY,
    job         text NOT NULL,
    run_key     text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_job ON job_runs (job, run_key, started_at);
