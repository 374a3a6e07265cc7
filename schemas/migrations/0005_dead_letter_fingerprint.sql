-- A dead letter's fingerprint (SHA-256 of what failed) makes a redelivered bad message or
-- frame land once, like the good ones.
ALTER TABLE dead_letters ADD COLUMN fingerprint bytea;
CREATE UNIQUE INDEX dead_letters_fingerprint ON dead_letters (fingerprint);
