-- Row count of a read model from the planner's statistics: exact counts of a
-- large table would cost more than the batch itself.
SELECT greatest(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'read' AND c.relname = $1::text
