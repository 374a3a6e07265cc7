-- daily_consumption: per meter and Europe/Warsaw day, the first and last cumulative volume
-- (quantity 'volume', function 'instantaneous', storage/tariff/subunit 0) and their times.
-- daily_consumption_agg holds the buckets (timestamptz of local midnight); the view
-- daily_consumption exposes them with a date column, the same in both storage modes.

-- mode: plain
CREATE MATERIALIZED VIEW daily_consumption_agg AS
SELECT meter_id,
       date_trunc('day', read_at, 'Europe/Warsaw') AS bucket,
       min(read_at) AS first_read_at,
       max(read_at) AS last_read_at,
       (array_agg(value ORDER BY read_at))[1] AS first_volume,
       (array_agg(value ORDER BY read_at DESC))[1] AS last_volume,
       count(*) AS readings
FROM readings
WHERE quantity = 'volume' AND function = 'instantaneous'
  AND storage = 0 AND tariff = 0 AND subunit = 0
GROUP BY meter_id, date_trunc('day', read_at, 'Europe/Warsaw');

CREATE UNIQUE INDEX daily_consumption_agg_key ON daily_consumption_agg (meter_id, bucket);

CREATE FUNCTION refresh_daily_consumption() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY daily_consumption_agg;
END;
$$;

-- mode: timescale
-- Real-time aggregation (materialized_only = false): late readings show up at once, the
-- policy only materialises; so refresh_daily_consumption() has nothing to do here.
CREATE MATERIALIZED VIEW daily_consumption_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '1 day', read_at, 'Europe/Warsaw') AS bucket,
       min(read_at) AS first_read_at,
       max(read_at) AS last_read_at,
       first(value, read_at) AS first_volume,
       last(value, read_at) AS last_volume,
       count(*) AS readings
FROM readings
WHERE quantity = 'volume' AND function = 'instantaneous'
  AND storage = 0 AND tariff = 0 AND subunit = 0
GROUP BY meter_id, time_bucket(INTERVAL '1 day', read_at, 'Europe/Warsaw')
WITH NO DATA;

SELECT add_continuous_aggregate_policy('daily_consumption_agg',
    start_offset => INTERVAL '60 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour');

CREATE FUNCTION refresh_daily_consumption() RETURNS void
LANGUAGE sql AS $$ SELECT $$;

-- mode: all
CREATE VIEW daily_consumption AS
SELECT meter_id,
       (bucket AT TIME ZONE 'Europe/Warsaw')::date AS day,
       first_read_at,
       last_read_at,
       first_volume,
       last_volume,
       readings
FROM daily_consumption_agg;
