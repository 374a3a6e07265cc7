-- ensure_time_partitions(months_ahead): the monthly partitions of raw_frames and readings from
-- last month to months_ahead months ahead. Rows that already sit in a DEFAULT partition for a
-- new month are moved into it, so creating a partition never fails. Ingest's scheduler calls
-- it daily; in TimescaleDB mode chunks are created on insert and the function does nothing.

-- mode: plain
CREATE FUNCTION ensure_month_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('%s_%s', parent, to_char(month, 'YYYY_MM'));
    time_col text := CASE parent WHEN 'readings' THEN 'read_at' ELSE 'received_at' END;
    low timestamptz := (month::timestamp AT TIME ZONE 'UTC');
    high timestamptz := ((month + INTERVAL '1 month')::timestamp AT TIME ZONE 'UTC');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part, parent);
    EXECUTE format(
        'WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved',
        parent || '_default', time_col, time_col, part) USING low, high;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, low, high);
    RETURN true;
END;
$$;

CREATE FUNCTION ensure_time_partitions(months_ahead int DEFAULT 3) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    first_month date := (date_trunc('month', now() AT TIME ZONE 'UTC') - INTERVAL '1 month')::date;
    created int := 0;
    parent text;
    i int;
BEGIN
    FOREACH parent IN ARRAY ARRAY['raw_frames', 'readings'] LOOP
        FOR i IN 0 .. months_ahead + 1 LOOP
            IF ensure_month_partition(parent, (first_month + make_interval(months => i))::date) THEN
                created := created + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;

SELECT ensure_time_partitions(3);

-- mode: timescale
CREATE FUNCTION ensure_time_partitions(months_ahead int DEFAULT 3) RETURNS int
LANGUAGE sql AS $$ SELECT 0 $$;
