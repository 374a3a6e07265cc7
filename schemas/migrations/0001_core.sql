-- Core tables: gateways, meters (with their AES keys) and dead letters.
-- Sections after "-- mode: timescale" or "-- mode: plain" run only in that storage mode;
-- "-- mode: all" sections run in both.

-- mode: timescale
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- mode: all
CREATE TABLE gateways (
    gateway_id  text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE meters (
    meter_id      text PRIMARY KEY,
    manufacturer  text NOT NULL,
    serial        text NOT NULL,
    version       smallint,
    device_type   smallint,
    aes_key       bytea CHECK (aes_key IS NULL OR length(aes_key) = 16),
    status        text NOT NULL DEFAULT 'unassigned'
                  CHECK (status IN ('unassigned', 'active', 'retired')),
    driver        text,
    first_seen_at timestamptz,
    last_seen_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    topic      text,
    gateway_id text,
    payload    bytea NOT NULL,
    frame      bytea,
    reason     text NOT NULL
);

CREATE INDEX dead_letters_created_at ON dead_letters (created_at);
