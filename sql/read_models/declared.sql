-- When read model $1 was declared (none if it has been dropped since this
-- instance loaded it, another time if it has been declared again); the
-- first of its tables whose changes can no longer be captured whole (one
-- that has gained a partition or an inheritance relative since), with why;
-- the first of its stand-ins that is gone (a view of a table the model
-- reads, dropped with the table's column by a DROP ... CASCADE: a batch
-- would read the table itself in its place); and the first column of a
-- stand-in that no longer names the table's column in its place (renamed,
-- names swapped, a name reused by a new column: a batch rebuilding old
-- rows from their captured JSON, which carries today's names, would read
-- another column or none). A stand-in lists its table's columns in their
-- order when it was made; columns added since come after them.
--
-- Catalog lookups by index only (a stand-in by its table's name, or, for a
-- table renamed since, through what depends on the table): this runs
-- before every refresh.
WITH stand_ins AS (
    SELECT r.source, x.schema,
           -- named as its table (as the table was named when it was made)
           coalesce((SELECT v.oid
                       FROM pg_namespace n
                       JOIN pg_class v ON v.relnamespace = n.oid AND v.relkind = 'v'
                                      AND v.relname = (SELECT t.relname FROM pg_class t WHERE t.oid = r.source)
                      WHERE n.nspname = x.schema),
                    (SELECT min(v.oid)
                       FROM pg_depend d
                       JOIN pg_rewrite rw ON rw.oid = d.objid
                       JOIN pg_class v ON v.oid = rw.ev_class AND v.relkind = 'v'
                       JOIN pg_namespace n ON n.oid = v.relnamespace AND n.nspname = x.schema
                      WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = r.source
                        AND d.classid = 'pg_rewrite'::regclass)) AS view,
           x.first
      FROM pgcqrs.read_model_sources r
     CROSS JOIN LATERAL (VALUES (split_part(r.search_path, ',', 1), true),
                                (split_part(r.plus_path, ',', 1), false),
                                (split_part(r.minus_path, ',', 1), false),
                                (r.any_schema, false),
                                (r.old_schema, false)) x(schema, first)
     WHERE r.model = $1::text AND x.schema <> ''
)
SELECT m.defined_at,
       (SELECT format('%s, which %s', c.oid::regclass, pgcqrs.capture_gap(c.oid))
          FROM pg_class c
         WHERE c.oid = ANY (m.sources)
           AND (c.relkind = 'p' OR c.relispartition OR c.relhassubclass
                OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))
           AND pgcqrs.capture_gap(c.oid) IS NOT NULL
         LIMIT 1) AS gap,
       (SELECT format('%s (in %s)', s.source, s.schema)
          FROM stand_ins s WHERE s.view IS NULL LIMIT 1) AS lost,
       (SELECT format('%s.%s', s.source, quote_ident(a.attname))
          FROM stand_ins s
          JOIN pg_attribute a ON a.attrelid = s.view AND a.attnum > 0
         WHERE s.first
           AND a.attname IS DISTINCT FROM
               (SELECT c.attname FROM pg_attribute c
                 WHERE c.attrelid = s.source AND c.attnum > 0 AND NOT c.attisdropped
                 ORDER BY c.attnum OFFSET a.attnum - 1 LIMIT 1)
         LIMIT 1) AS renamed
FROM pgcqrs.read_models m
WHERE m.name = $1::text
