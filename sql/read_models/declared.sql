-- When read model $1 was declared (none if it has been dropped since this
-- instance loaded it, another time if it has been declared again), and the
-- first of its tables whose changes can no longer be captured whole (one
-- that has gained a partition or an inheritance relative since), with why.
SELECT m.defined_at,
       (SELECT format('%s %s', s, pgcqrs.capture_gap(s))
          FROM unnest(m.sources) s
         WHERE pgcqrs.capture_gap(s) IS NOT NULL
         LIMIT 1) AS gap
FROM pgcqrs.read_models m
WHERE m.name = $1::text
