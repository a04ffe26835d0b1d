-- When read model $1 was declared (none if it has been dropped since this
-- instance loaded it, another time if it has been declared again); the
-- first of its tables whose changes can no longer be captured whole (one
-- that has gained a partition or an inheritance relative since), with why;
-- the first of its stand-ins that is gone (a view of a table the model
-- reads, dropped with the table's column by a DROP ... CASCADE: a batch
-- would read the table itself in its place); and the first column its
-- stand-ins name that its table no longer has (renamed: a batch rebuilding
-- old rows from their captured JSON would find it NULL). Catalog lookups
-- by index only: this runs before every refresh.
SELECT m.defined_at,
       (SELECT format('%s %s', c.oid::regclass, pgcqrs.capture_gap(c.oid))
          FROM pg_class c
         WHERE c.oid = ANY (m.sources)
           AND (c.relkind = 'p' OR c.relispartition OR c.relhassubclass
                OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))
           AND pgcqrs.capture_gap(c.oid) IS NOT NULL
         LIMIT 1) AS gap,
       (SELECT format('%s (in %s)', r.source, x.schema)
          FROM pgcqrs.read_model_sources r
         CROSS JOIN LATERAL unnest(ARRAY[split_part(r.search_path, ',', 1), split_part(r.plus_path, ',', 1),
                                         split_part(r.minus_path, ',', 1), r.any_schema, r.old_schema]) x(schema)
         WHERE r.model = m.name
           AND x.schema <> ''
           AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = x.schema AND c.relkind = 'v')
         LIMIT 1) AS lost,
       (SELECT format('%s.%s', r.source, quote_ident(a.attname))
          FROM pgcqrs.read_model_sources r
          JOIN pg_namespace n ON n.nspname = split_part(r.search_path, ',', 1)
          JOIN pg_class v ON v.relnamespace = n.oid AND v.relkind = 'v'
          JOIN pg_attribute a ON a.attrelid = v.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE r.model = m.name
           AND (SELECT c.attisdropped FROM pg_attribute c
                 WHERE c.attrelid = r.source AND c.attname = a.attname) IS DISTINCT FROM false
         LIMIT 1) AS renamed
FROM pgcqrs.read_models m
WHERE m.name = $1::text
