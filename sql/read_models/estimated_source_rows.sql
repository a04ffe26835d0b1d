-- Rows of a read model's source tables ($1), from the planner's
-- statistics: what a whole recomputation reads.
SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint
FROM pg_class c
WHERE c.oid = ANY ($1::oid[])
