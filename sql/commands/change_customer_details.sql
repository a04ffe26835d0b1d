-- A NULL argument keeps the current value. The version is bumped by trigger.
UPDATE write.customers
SET name = coalesce($2::text, name), email = coalesce($3::text, email)
WHERE id = $1::text
RETURNING version, pg_current_xact_id()::text AS token
