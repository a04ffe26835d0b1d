-- Cheaper key views: V13's treatment of the delta stand-ins, for the views
-- a batch finds its keys through.
--
-- A batch of a model kept by key (order_summary, order_lines, and the
-- groups a delta cannot settle) reads each changed table through a view of
-- the rows the batch changed, as they are now and as they were. The rows
-- as they were were rebuilt whole with jsonb_populate_record, every column
-- through its domain's check (write.entity_id's regular expression,
-- write.money's bound), and whether a row was unchanged was asked of
-- to_jsonb(r), the whole rebuilt row turned back into JSON once per column
-- the query reads. For 17,700 status changes at 1.8M orders that half of
-- order_summary's key search took 0.56 s, 32 µs a row.
--
-- Old rows are now rebuilt with jsonb_to_record, only the columns the
-- query reads and the key, as their base types (the values were checked
-- when they were written; the other columns are NULL). They are compared
-- with the table as it is now through the captured JSON itself. The rows
-- as they are now are read as the same base types: a union whose parts
-- differ in type is not flattened into the query that reads it, and a
-- 10,000-order import then found its keys in 46 s instead of 0.1 s.

CREATE OR REPLACE FUNCTION pgcqrs.key_view(model text, source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    s       pgcqrs.read_model_sources;
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    same    text;
    needed  text[];
    current text;
    rebuilt text;
    shape   text;
BEGIN
    SELECT * INTO s FROM pgcqrs.read_model_sources r WHERE r.model = key_view.model AND r.source = key_view.source;
    same := coalesce((SELECT string_agg(format('(b.old -> %1$L) IS NOT DISTINCT FROM to_jsonb(t.%1$I)', u), ' AND ')
                        FROM unnest(s.columns) u), 'true');
    needed := s.columns || s.key;
    -- Both parts' columns as the same (base) types, so that the union is
    -- flattened into the query that reads it.
    SELECT string_agg(CASE WHEN pgcqrs.plain_type(source, a.attname) = format_type(a.atttypid, a.atttypmod)
                           THEN format('t.%I', a.attname)
                           ELSE format('t.%1$I::%2$s AS %1$I', a.attname, pgcqrs.plain_type(source, a.attname)) END,
                      ', ' ORDER BY a.attnum),
           string_agg(CASE WHEN a.attname = ANY (needed) THEN format('r.%I', a.attname)
                           ELSE format('NULL::%s AS %I', pgcqrs.plain_type(source, a.attname), a.attname) END,
                      ', ' ORDER BY a.attnum),
           string_agg(format('%I %s', a.attname, pgcqrs.plain_type(source, a.attname)), ', ' ORDER BY a.attnum)
             FILTER (WHERE a.attname = ANY (needed))
      INTO current, rebuilt, shape
      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped;
    -- (its columns' types change: base types where they were domains)
    EXECUTE format('DROP VIEW IF EXISTS %I.%I', s.delta_schema, relname);
    EXECUTE format($v$
        CREATE VIEW %1$I.%2$I AS
        SELECT %10$s FROM pgcqrs.batch b JOIN %3$s t ON %4$s
         WHERE b.relid = %5$s AND b.op IN ('I', 'U') AND (b.old IS NULL OR NOT (%6$s))
        UNION ALL
        SELECT %7$s FROM pgcqrs.batch b CROSS JOIN LATERAL jsonb_to_record(b.old) AS r(%8$s)
         WHERE b.relid = %5$s AND b.old IS NOT NULL
           AND (b.op = 'D' OR NOT EXISTS (SELECT 1 FROM %3$s t WHERE %9$s AND %6$s))$v$,
        s.delta_schema, relname, source, pgcqrs.key_join(source, s.key, 'b'),
        format('%L::regclass', source::text), same, rebuilt, shape,
        -- (probed by the rebuilt row's key, after a join's condition on
        -- the row has applied)
        (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(s.key) p),
        current);
END
$fn$;

-- Every model's key views made again.
SELECT pgcqrs.key_view(s.model, s.source) FROM pgcqrs.read_model_sources s ORDER BY s.model, s.source;
