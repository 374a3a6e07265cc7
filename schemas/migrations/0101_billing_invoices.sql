-- Billing runs, gapless invoice counters, invoices (draft -> issued), their lines, the
-- boundary readings each invoice billed, and readings held for staff review.
-- An invoice's number is taken from its invoice_counters row, locked FOR UPDATE inside the
-- transaction that issues it, so numbers per series and year have no gaps and no repeats.

-- mode: all
CREATE TABLE billing_runs (
    run_id      bigserial PRIMARY KEY,
    period      date NOT NULL CHECK (extract(day FROM period) = 1),
    group_code  text REFERENCES billing_groups,
    dry_run     boolean NOT NULL DEFAULT false,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    summary     jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE invoice_counters (
    series      text NOT NULL,
    year        int NOT NULL,
    last_number int NOT NULL DEFAULT 0 CHECK (last_number >= 0),
    PRIMARY KEY (series, year)
);

CREATE TABLE invoices (
    invoice_id    bigserial PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES contracts,
    customer_id   bigint NOT NULL REFERENCES customers,
    kind          text NOT NULL DEFAULT 'regular' CHECK (kind IN ('regular', 'correction')),
    corrects_id   bigint REFERENCES invoices,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'issued')),
    series        text NOT NULL,
    year          int,
    number        int,
    invoice_no    text GENERATED ALWAYS AS (series || '/' || number || '/' || year) STORED,
    period_start  date NOT NULL,
    period_end    date NOT NULL CHECK (period_end >= period_start),
    issue_date    date,
    due_date      date,
    net_gr        bigint NOT NULL,
    vat_gr        bigint NOT NULL,
    gross_gr      bigint NOT NULL CHECK (gross_gr = net_gr + vat_gr),
    estimated     boolean NOT NULL DEFAULT false,
    run_id        bigint REFERENCES billing_runs,
    created_at    timestamptz NOT NULL DEFAULT now(),
    issued_at     timestamptz,
    CHECK ((status = 'issued') = (number IS NOT NULL)),
    CHECK ((status = 'issued') = (year IS NOT NULL AND issue_date IS NOT NULL
                                  AND due_date IS NOT NULL AND issued_at IS NOT NULL)),
    CHECK ((kind = 'correction') = (corrects_id IS NOT NULL)),
    UNIQUE (series, year, number)
);
-- A re-run of a settlement issues nothing twice: one regular invoice per contract and period.
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (contract_id, period_start, period_end)
    WHERE kind = 'regular';
CREATE INDEX invoices_customer ON invoices (customer_id, issue_date);
CREATE INDEX invoices_period ON invoices (period_end, status);
CREATE INDEX invoices_corrects ON invoices (corrects_id);

CREATE TABLE invoice_lines (
    invoice_id     bigint NOT NULL REFERENCES invoices ON DELETE CASCADE,
    line_no        smallint NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('water', 'sewage', 'subscription')),
    description    text NOT NULL,
    valid_from     date NOT NULL,
    valid_to       date NOT NULL CHECK (valid_to >= valid_from),
    quantity       numeric NOT NULL,
    unit           text NOT NULL,
    unit_price     numeric(12, 4) NOT NULL,
    net_gr         bigint NOT NULL,
    vat_rate       numeric(5, 4) NOT NULL,
    estimated      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (invoice_id, line_no)
);

-- The cumulative meter value an invoice took at each boundary of its period, and where it
-- came from; the next invoice starts from it, and an actual reading corrects an estimate.
CREATE TABLE billed_readings (
    invoice_id bigint NOT NULL REFERENCES invoices ON DELETE CASCADE,
    meter_id   text NOT NULL REFERENCES meters,
    role       text NOT NULL CHECK (role IN ('main', 'garden')),
    boundary   text NOT NULL CHECK (boundary IN ('start', 'end')),
    on_date    date NOT NULL,
    value_m3   numeric NOT NULL,
    source     text NOT NULL CHECK (source IN ('remote', 'customer', 'inspector', 'estimate',
                                               'installation')),
    PRIMARY KEY (invoice_id, meter_id, boundary)
);
CREATE INDEX billed_readings_meter ON billed_readings (meter_id, on_date);

CREATE TABLE held_readings (
    held_id      bigserial PRIMARY KEY,
    contract_id  bigint NOT NULL REFERENCES contracts,
    meter_id     text REFERENCES meters,
    period_start date NOT NULL,
    period_end   date NOT NULL,
    reason       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text
);
CREATE UNIQUE INDEX held_readings_open ON held_readings (contract_id, period_start, period_end)
    WHERE resolved_at IS NULL;
