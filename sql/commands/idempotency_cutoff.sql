-- The creation time before which idempotency keys are forgotten: now, by
-- the database's clock, less the retention ($1 hours).
SELECT now() - make_interval(hours => $1::int)
