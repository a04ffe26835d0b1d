-- Forget one batch of idempotency keys created before the cutoff ($1): a
-- retry after that runs the command afresh. At most $2 keys, oldest first,
-- so that each batch is a short transaction of its own; a pass repeats it
-- until a batch comes back short. Keys another pass (another instance)
-- holds right now are skipped, not waited for.
DELETE FROM write.idempotency_keys
WHERE idempotency_key IN (
    SELECT idempotency_key FROM write.idempotency_keys
    WHERE created_at < $1::timestamptz
    ORDER BY created_at
    LIMIT $2::int
    FOR UPDATE SKIP LOCKED
)
