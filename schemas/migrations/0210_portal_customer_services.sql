-- The e-office's customer services: complaints and service reports with their attachments
-- and answers, announcements with the streets they concern, replacement water points,
-- remote reading requests, notification preferences, and the cached median use of
-- similar households (same tariff group) per month.

-- mode: all
-- reklamacje (invoice or reading disputes) and zgłoszenia (service reports); due_on is the
-- answer deadline (14 or 30 days, configurable) fixed when the case is filed.
CREATE TABLE complaints (
    complaint_id bigserial PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers,
    kind         text NOT NULL CHECK (kind IN ('invoice_dispute', 'reading_dispute',
                                               'low_pressure', 'dirty_water', 'leaking_meter',
                                               'other')),
    subject      text NOT NULL CHECK (subject <> '' AND length(subject) <= 200),
    description  text NOT NULL CHECK (description <> '' AND length(description) <= 5000),
    invoice_id   bigint REFERENCES invoices,
    meter_id     text REFERENCES meters,
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'in_progress', 'answered', 'closed')),
    filed_at     timestamptz NOT NULL DEFAULT now(),
    due_on       date NOT NULL,
    answer       text,
    answered_at  timestamptz,
    answered_by  bigint REFERENCES staff_users ON DELETE SET NULL,
    CHECK ((answer IS NULL) = (answered_at IS NULL))
);
CREATE INDEX complaints_customer ON complaints (customer_id, filed_at DESC);
CREATE INDEX complaints_open ON complaints (due_on) WHERE status IN ('open', 'in_progress');

CREATE TABLE complaint_attachments (
    complaint_id bigint NOT NULL REFERENCES complaints ON DELETE CASCADE,
    upload_id    bigint NOT NULL REFERENCES portal_uploads ON DELETE CASCADE,
    PRIMARY KEY (complaint_id, upload_id)
);
CREATE INDEX complaint_attachments_upload ON complaint_attachments (upload_id);

-- Announcements (planned outage, water not fit to drink) and the streets they concern; an
-- announcement with no street concerns everybody. A street matches a service point whose
-- address starts with it (case-insensitive), in the given city when one is named.
CREATE TABLE announcements (
    announcement_id bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('outage', 'water_quality', 'works', 'info')),
    title      text NOT NULL CHECK (title <> '' AND length(title) <= 200),
    body       text NOT NULL CHECK (length(body) <= 5000),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    created_by bigint REFERENCES staff_users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX announcements_current ON announcements (ends_at, starts_at);

CREATE TABLE announcement_streets (
    announcement_id bigint NOT NULL REFERENCES announcements ON DELETE CASCADE,
    street          text NOT NULL CHECK (street <> ''),
    city            text NOT NULL DEFAULT '',
    PRIMARY KEY (announcement_id, street, city)
);

CREATE TABLE water_points (
    point_id        bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (name <> ''),
    address         text NOT NULL CHECK (address <> ''),
    announcement_id bigint REFERENCES announcements ON DELETE SET NULL,
    active_from     timestamptz NOT NULL DEFAULT now(),
    active_to       timestamptz CHECK (active_to IS NULL OR active_to > active_from)
);

-- A customer's request to read a meter now: the command goes to the gateway that last heard
-- the meter; the answer is any reading of the meter received after requested_at.
CREATE TABLE remote_read_requests (
    request_id   uuid PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers,
    meter_id     text NOT NULL REFERENCES meters,
    gateway_id   text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL CHECK (status IN ('sent', 'failed')),
    error        text
);
CREATE INDEX remote_read_requests_customer ON remote_read_requests (customer_id, requested_at);

-- Which notices a customer wants by e-mail and by SMS; no row means the defaults (e-mail on).
CREATE TABLE notification_preferences (
    customer_id bigint NOT NULL REFERENCES customers,
    kind        text NOT NULL CHECK (kind IN ('invoice_issued', 'payment_reminder',
                                              'contract_ending', 'announcement')),
    by_email    boolean NOT NULL DEFAULT true,
    by_sms      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, kind)
);

-- Median average daily use of the households of one tariff group in one month, computed
-- at most once a day on demand (the comparison with similar households).
CREATE TABLE group_use_medians (
    tariff_id      bigint NOT NULL REFERENCES tariffs,
    month          date NOT NULL CHECK (extract(day FROM month) = 1),
    m3_per_day     numeric NOT NULL,
    households     int NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tariff_id, month)
);
