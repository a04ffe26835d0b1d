-- One refresher at a time per view, across every instance on this database.
-- Held until the refresh transaction ends.
SELECT pg_try_advisory_xact_lock(hashtext('pgcqrs.refresh'), hashtext($1::text))
