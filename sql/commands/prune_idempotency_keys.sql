-- Forget idempotency keys older than the retention: a retry after that runs
-- the command afresh. Bounded per run so that it never holds locks long.
DELETE FROM write.idempotency_keys
WHERE idempotency_key IN (
    SELECT idempotency_key FROM write.idempotency_keys
    WHERE created_at < now() - make_interval(hours => $1::int)
    LIMIT 10000
)
