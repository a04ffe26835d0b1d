-- Claim a key. A concurrent claim of the same key waits here until the first
-- transaction ends: then it finds the stored response (0 rows inserted) or,
-- if the first rolled back, claims the key itself.
INSERT INTO write.idempotency_keys (idempotency_key, request_fingerprint)
VALUES ($1, $2)
ON CONFLICT (idempotency_key) DO NOTHING
