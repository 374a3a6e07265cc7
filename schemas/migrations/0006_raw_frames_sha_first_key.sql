-- raw_frames' unique key starts with frame_sha, so the one index serves both dedup (the key)
-- and the lookup of earlier receptions of the same bytes (frame_sha = ANY(...) AND received_at
-- BETWEEN ...): the separate raw_frames_frame_sha index goes, one index insert fewer per frame.
-- Plain PostgreSQL only: TimescaleDB refuses new unique constraints on a hypertable with
-- compression enabled (timescale/timescaledb#5595), so there raw_frames keeps its 0002 indexes.

-- mode: plain
ALTER TABLE raw_frames
    ADD CONSTRAINT raw_frames_frame_sha_received_at_gateway_id_key
    UNIQUE (frame_sha, received_at, gateway_id);
ALTER TABLE raw_frames DROP CONSTRAINT raw_frames_gateway_id_frame_sha_received_at_key;
DROP INDEX raw_frames_frame_sha;

-- mode: timescale
COMMENT ON INDEX raw_frames_frame_sha IS
    'earlier receptions of the same bytes; kept: a compressed hypertable takes no new unique key';
