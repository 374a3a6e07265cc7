-- E-notifications: the kinds of notice (a table instead of a CHECK list, so a part adds a
-- kind with one INSERT), language and e-invoice choice, consent in the portal's preferences,
-- the delivery state per (outbox notice, channel) and the log of every attempt, for staff.
--
-- A delivery goes pending -> claimed -> sending -> sent, or back to pending with a later
-- next_attempt_at after a failure, or dead after the last attempt or a permanent refusal.
-- 'sending' is committed before the network call; a 'sending' row whose worker died is
-- resolved at recovery (SMS: resent under the same idempotency key, which the gateway
-- deduplicates; e-mail: 'uncertain', never resent blindly). 'skipped': no consent, no
-- address, or a channel the sender does not handle (letters).

-- mode: all
CREATE TABLE notice_kinds (
    kind             text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    legally_required boolean NOT NULL DEFAULT false
);

-- Every kind the outbox CHECK allowed so far (whoever added it), then the new ones.
INSERT INTO notice_kinds (kind)
SELECT DISTINCT m[1]
FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z0-9_]+)''', 'g') AS m
WHERE c.conname = 'outbox_kind_check' AND c.conrelid = 'outbox'::regclass;

INSERT INTO notice_kinds (kind) VALUES
    ('invoice_issued'), ('payment_reminder'), ('overdue_reminder'), ('contract_ending'),
    ('announcement'), ('remote_reading_result')
ON CONFLICT (kind) DO NOTHING;
INSERT INTO notice_kinds (kind, legally_required) VALUES
    ('payment_demand', true), ('interest_note', true), ('new_login', true),
    ('portal_verify_email', true), ('portal_password_reset', true),
    ('portal_initial_password', true), ('portal_account_exists', true),
    ('portal_new_email', true), ('portal_account_activated', true)
ON CONFLICT (kind) DO UPDATE SET legally_required = true;

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_fkey FOREIGN KEY (kind) REFERENCES notice_kinds;
-- Set once the sender has decided the notice's deliveries (one row per channel).
ALTER TABLE outbox ADD COLUMN routed_at timestamptz;
CREATE INDEX outbox_unrouted ON outbox (outbox_id) WHERE routed_at IS NULL;

-- Language and e-invoice choice of a customer; no row means Polish, no PDF attached.
CREATE TABLE notification_settings (
    customer_id bigint PRIMARY KEY REFERENCES customers ON DELETE CASCADE,
    language    text NOT NULL DEFAULT 'pl' CHECK (language IN ('pl', 'en')),
    e_invoice   boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Consent per kind and channel lives in the portal's notification_preferences (0210: no row
-- means e-mail on, SMS off); any kind that is not legally required may have a row.
ALTER TABLE notification_preferences DROP CONSTRAINT notification_preferences_kind_check;
ALTER TABLE notification_preferences ADD CONSTRAINT notification_preferences_kind_fkey
    FOREIGN KEY (kind) REFERENCES notice_kinds;

CREATE TABLE notify_deliveries (
    outbox_id       bigint NOT NULL REFERENCES outbox ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'letter')),
    address         text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'claimed', 'sending', 'sent', 'dead', 'uncertain', 'skipped')),
    attempts        int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    worker_id       int,
    provider_id     text,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outbox_id, channel),
    CHECK (status NOT IN ('claimed', 'sending') OR worker_id IS NOT NULL)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (channel, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notify_deliveries_in_flight ON notify_deliveries (worker_id)
    WHERE status IN ('claimed', 'sending');

CREATE TABLE notify_attempts (
    attempt_id  bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL,
    channel     text NOT NULL,
    attempt     int NOT NULL,
    status      text NOT NULL CHECK (status IN
                ('sent', 'failed', 'dead', 'uncertain', 'skipped', 'duplicate')),
    error       text,
    provider_id text,
    at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (outbox_id, channel) REFERENCES notify_deliveries ON DELETE CASCADE
);
CREATE INDEX notify_attempts_delivery ON notify_attempts (outbox_id, channel, attempt);
CREATE INDEX notify_attempts_at ON notify_attempts (at);
