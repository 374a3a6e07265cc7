-- When a delivery was claimed. The sender commits its per-message marks ('sending', 'sent')
-- with synchronous_commit off: a crash of the sender cannot lose them, only a crash of the
-- PostgreSQL server can, and recovery tells that case by a claim older than the server's
-- start (pg_postmaster_start_time()); see billing_engine/notify/store.py.

-- mode: all
ALTER TABLE notify_deliveries ADD COLUMN claimed_at timestamptz;
