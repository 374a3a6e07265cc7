-- Payments: online transactions through a Przelewy24-compatible gateway, the log of
-- notifications refused, each customer's virtual bank account, imported bank statements and
-- their items. A payment reaches the ledger only through billing_engine.payments, whose
-- ledger reference ('p24:<session>' or 'bank:<dedup key>') is unique, so nothing is booked
-- twice.

-- mode: all
CREATE TABLE payment_transactions (
    transaction_id bigserial PRIMARY KEY,
    session_id     text NOT NULL UNIQUE,
    customer_id    bigint NOT NULL REFERENCES customers,
    invoice_ids    bigint[] NOT NULL CHECK (cardinality(invoice_ids) > 0),
    amount_gr      bigint NOT NULL CHECK (amount_gr > 0),
    currency       text NOT NULL DEFAULT 'PLN',
    state          text NOT NULL DEFAULT 'registered'
                   CHECK (state IN ('registered', 'notified', 'verified', 'booked', 'failed')),
    token          text UNIQUE,
    p24_order_id   bigint UNIQUE,
    entry_id       bigint UNIQUE REFERENCES ledger_entries,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'booked') = (entry_id IS NOT NULL))
);
CREATE INDEX payment_transactions_customer ON payment_transactions (customer_id, created_at);

-- Every status notification the portal refused (bad signature, wrong amount, unknown
-- session), kept for staff.
CREATE TABLE payment_refusals (
    refusal_id  bigserial PRIMARY KEY,
    session_id  text,
    reason      text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE virtual_accounts (
    customer_id bigint PRIMARY KEY REFERENCES customers,
    iban        text NOT NULL UNIQUE CHECK (iban ~ '^PL[0-9]{26}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bank_statements (
    statement_id bigserial PRIMARY KEY,
    format       text NOT NULL CHECK (format IN ('mt940', 'csv')),
    account      text NOT NULL,
    reference    text NOT NULL,
    source_name  text NOT NULL DEFAULT '',
    imported_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account, reference)
);

-- One line of a statement. state: 'booked' (matched and in the ledger), 'unmatched' (a
-- credit no virtual account claims, waiting for staff), 'assigned' (booked after staff chose
-- the customer), 'ignored' (a debit).
CREATE TABLE statement_items (
    item_id              bigserial PRIMARY KEY,
    statement_id         bigint NOT NULL REFERENCES bank_statements,
    dedup_key            text NOT NULL UNIQUE,
    booked_on            date NOT NULL,
    amount_gr            bigint NOT NULL,
    currency             text NOT NULL DEFAULT 'PLN',
    virtual_account      text,
    counterparty_account text NOT NULL DEFAULT '',
    counterparty_name    text NOT NULL DEFAULT '',
    title                text NOT NULL DEFAULT '',
    state                text NOT NULL
                         CHECK (state IN ('booked', 'unmatched', 'assigned', 'ignored')),
    customer_id          bigint REFERENCES customers,
    entry_id             bigint UNIQUE REFERENCES ledger_entries,
    assigned_by          text,
    assigned_at          timestamptz,
    CHECK ((state IN ('booked', 'assigned')) = (entry_id IS NOT NULL))
);
CREATE INDEX statement_items_unmatched ON statement_items (booked_on) WHERE state = 'unmatched';
CREATE INDEX statement_items_statement ON statement_items (statement_id);
