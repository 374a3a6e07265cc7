-- The e-office (iBOK): customer accounts and their link to billing's customers, staff users
-- with roles, server-side sessions, rate-limit counters shared by every gunicorn worker,
-- single-use e-mail tokens, acceptances of the terms and the privacy policy, the staff audit
-- log, and uploaded files. E-mail addresses are stored lower-cased.

-- mode: all
CREATE TABLE portal_accounts (
    account_id           bigserial PRIMARY KEY,
    email                text NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
    password_hash        text NOT NULL,
    must_change_password boolean NOT NULL DEFAULT false,
    customer_id          bigint REFERENCES customers,
    -- unverified: e-mail not confirmed yet; pending: waits for staff approval; active.
    status               text NOT NULL DEFAULT 'unverified'
                         CHECK (status IN ('unverified', 'pending', 'active')),
    created_by           text NOT NULL CHECK (created_by IN ('self', 'staff')),
    claimed_customer_no  text,
    claimed_invoice_no   text,
    blocked_at           timestamptz,
    blocked_reason       text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    email_verified_at    timestamptz,
    activated_at         timestamptz,
    last_login_at        timestamptz,
    CHECK (status <> 'active' OR customer_id IS NOT NULL)
);
CREATE INDEX portal_accounts_customer ON portal_accounts (customer_id);
CREATE INDEX portal_accounts_pending ON portal_accounts (created_at) WHERE status = 'pending';

CREATE TABLE staff_users (
    staff_id             bigserial PRIMARY KEY,
    email                text NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
    name                 text NOT NULL DEFAULT '',
    password_hash        text NOT NULL,
    roles                text[] NOT NULL
                         CHECK (cardinality(roles) > 0
                                AND roles <@ ARRAY['billing', 'customer_service', 'admin']),
    must_change_password boolean NOT NULL DEFAULT true,
    disabled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz
);

-- A session belongs to at most one customer account or one staff user; the id itself is
-- never stored, only its SHA-256.
CREATE TABLE portal_sessions (
    session_hash bytea PRIMARY KEY CHECK (length(session_hash) = 32),
    account_id   bigint REFERENCES portal_accounts ON DELETE CASCADE,
    staff_id     bigint REFERENCES staff_users ON DELETE CASCADE,
    data         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    seen_at      timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CHECK (account_id IS NULL OR staff_id IS NULL)
);
CREATE INDEX portal_sessions_account ON portal_sessions (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX portal_sessions_staff ON portal_sessions (staff_id) WHERE staff_id IS NOT NULL;
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);

-- Fixed-window counters; bucket names say what they count (e.g. "login:ip:203.0.113.9").
CREATE TABLE rate_limits (
    bucket       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         int NOT NULL DEFAULT 1 CHECK (hits > 0),
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);

CREATE TABLE email_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id bigint NOT NULL REFERENCES portal_accounts ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'reset', 'new_email')),
    new_email  text CHECK (new_email IS NULL OR new_email = lower(new_email)),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK ((purpose = 'new_email') = (new_email IS NOT NULL))
);
CREATE INDEX email_tokens_account ON email_tokens (account_id, purpose);

CREATE TABLE terms_acceptances (
    account_id  bigint NOT NULL REFERENCES portal_accounts ON DELETE CASCADE,
    document    text NOT NULL CHECK (document IN ('terms', 'privacy')),
    version     text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    ip          inet,
    PRIMARY KEY (account_id, document, version)
);

-- Kept when a staff user or an account is deleted: targets are named, not referenced.
CREATE TABLE audit_log (
    audit_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    staff_id    bigint REFERENCES staff_users ON DELETE SET NULL,
    staff_email text NOT NULL,
    action      text NOT NULL,
    target_kind text NOT NULL DEFAULT '',
    target_id   text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}',
    ip          inet
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_id);

-- Files customers attach (complaints); served only as downloads.
CREATE TABLE portal_uploads (
    upload_id    bigserial PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers,
    filename     text NOT NULL CHECK (filename <> ''),
    content_type text NOT NULL,
    size_bytes   int NOT NULL CHECK (size_bytes > 0),
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),
    content      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_uploads_customer ON portal_uploads (customer_id);

-- Portal notices (e-mail verification, password reset, initial passwords) go through
-- billing's outbox: a notice may be addressed to an account that is not linked yet.
ALTER TABLE outbox ALTER COLUMN customer_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN account_id bigint REFERENCES portal_accounts ON DELETE CASCADE;
ALTER TABLE outbox ADD CONSTRAINT outbox_recipient_check
    CHECK (customer_id IS NOT NULL OR account_id IS NOT NULL);
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN (
    'invoice_issued', 'payment_reminder', 'payment_demand', 'interest_note',
    'portal_verify_email', 'portal_password_reset', 'portal_initial_password',
    'portal_account_exists', 'portal_new_email', 'portal_account_activated'));
CREATE INDEX outbox_account ON outbox (account_id) WHERE account_id IS NOT NULL;
