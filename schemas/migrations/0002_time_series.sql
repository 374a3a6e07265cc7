-- raw_frames (every reception) and readings (one row per meter value), partitioned by time.
-- raw_frames.read_at is the reading time the ingest assigned to the frame's readings: the
-- copies of one radio telegram heard by several gateways share it (see docs/storage.md).

-- mode: plain
CREATE TABLE raw_frames (
    received_at timestamptz NOT NULL,
    gateway_id  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('mbus', 'wmbus')),
    frame_sha   bytea NOT NULL,
    frame       bytea NOT NULL,
    rssi_dbm    smallint,
    meter_id    text,
    read_at     timestamptz,
    UNIQUE (gateway_id, frame_sha, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE raw_frames_default PARTITION OF raw_frames DEFAULT;

CREATE TABLE readings (
    meter_id    text NOT NULL,
    read_at     timestamptz NOT NULL,
    storage     int NOT NULL,
    tariff      int NOT NULL,
    subunit     int NOT NULL,
    quantity    text NOT NULL,
    function    text NOT NULL,
    unit        text NOT NULL,
    value       numeric NOT NULL,
    received_at timestamptz NOT NULL,
    gateway_id  text,
    source      text NOT NULL DEFAULT 'remote',
    PRIMARY KEY (meter_id, quantity, function, storage, tariff, subunit, read_at)
) PARTITION BY RANGE (read_at);
CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- mode: timescale
CREATE TABLE raw_frames (
    received_at timestamptz NOT NULL,
    gateway_id  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('mbus', 'wmbus')),
    frame_sha   bytea NOT NULL,
    frame       bytea NOT NULL,
    rssi_dbm    smallint,
    meter_id    text,
    read_at     timestamptz,
    UNIQUE (gateway_id, frame_sha, received_at)
);
SELECT create_hypertable('raw_frames', by_range('received_at', INTERVAL '1 day'));

CREATE TABLE readings (
    meter_id    text NOT NULL,
    read_at     timestamptz NOT NULL,
    storage     int NOT NULL,
    tariff      int NOT NULL,
    subunit     int NOT NULL,
    quantity    text NOT NULL,
    function    text NOT NULL,
    unit        text NOT NULL,
    value       numeric NOT NULL,
    received_at timestamptz NOT NULL,
    gateway_id  text,
    source      text NOT NULL DEFAULT 'remote',
    PRIMARY KEY (meter_id, quantity, function, storage, tariff, subunit, read_at)
);
SELECT create_hypertable('readings', by_range('read_at', INTERVAL '7 days'));

ALTER TABLE raw_frames SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'meter_id',
    timescaledb.compress_orderby = 'received_at DESC'
);
SELECT add_compression_policy('raw_frames', compress_after => INTERVAL '7 days');
SELECT add_retention_policy('raw_frames', drop_after => INTERVAL '90 days');

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'meter_id',
    timescaledb.compress_orderby = 'read_at DESC'
);
SELECT add_compression_policy('readings', compress_after => INTERVAL '60 days');

-- mode: all
CREATE INDEX raw_frames_frame_sha ON raw_frames (frame_sha, received_at);
CREATE INDEX raw_frames_meter ON raw_frames (meter_id, received_at);
CREATE INDEX readings_meter_read_at ON readings (meter_id, read_at);
