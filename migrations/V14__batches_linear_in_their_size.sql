-- Batches that cost a pass over their changes, whatever their size.
--
-- A table "as it was before the batch" (the stand-in a delta joins when a
-- batch changed several tables) left out the rows the batch changed with
-- `key <> ALL (ARRAY(SELECT key FROM pgcqrs.batch ...))`: a comparison
-- with every changed key, for every row a join reached. A bulk import of
-- 100,000 orders with their lines made that 10^10 comparisons, and
-- `product_sales` took 146 s to catch up where a recomputation took 12 s.
-- The old versions those stand-ins and the key searches join
-- (`pgcqrs_first_rows`, `pgcqrs_old_rows`) had no index either, so each
-- probe scanned all of them.
--
-- The changed rows are now found through an index on the batch's keys,
-- one probe per row reached, and the tables of old versions have an index
-- on the source's primary key.
--
-- A hash index on the key alone, on purpose. A btree on (relid, key) was
-- also used to read every batch's changes (`WHERE relid = ...`), on a table
-- every model fills and empties four times a second, and under load the
-- models fell behind (p99 from 0.6 s to 1.1-1.4 s at 100k orders); a hash
-- index serves only the probes (relid is checked on the row). It also
-- holds a key of any size, where a btree entry is limited to about a third
-- of a page.

CREATE INDEX batch_key_idx ON pgcqrs.batch USING hash (key);
COMMENT ON INDEX pgcqrs.batch_key_idx IS
    'Whether the batch changed a row: one probe per row a stand-in reaches.';

-- V13's delta stand-ins, with the table as it was reaching the batch's
-- changed keys through the index above, and its first versions indexed.
CREATE OR REPLACE FUNCTION pgcqrs.delta_stand_in(model text, source regclass, n int, path text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    def     regclass := format('pgcqrs_defs.%I', model)::regclass;
    kinds   text[] := pgcqrs.delta_kinds(def, source);
    s       pgcqrs.read_model_sources;
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    plus    text := format('pgcqrs_p%s_%s', n, model);
    minus   text := format('pgcqrs_m%s_%s', n, model);
    old     text := format('pgcqrs_o%s_%s', n, model);
    pkeq    text;
    same    text;
    firsts  text;
    needed  text[];
    rebuilt text;
    shape   text;
BEGIN
    -- a key column must be a grouped one (the merge groups by the key)
    IF kinds IS NULL OR EXISTS (
           SELECT 1 FROM pgcqrs.read_models m, unnest(m.key) k
             JOIN pg_attribute a ON a.attrelid = def AND a.attname = k
            WHERE m.name = delta_stand_in.model AND kinds[a.attnum] <> 'group') THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM pgcqrs.read_model_sources r WHERE r.model = delta_stand_in.model AND r.source = delta_stand_in.source;
    pkeq := (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(s.key) p);
    same := coalesce((SELECT string_agg(format('(f.old -> %1$L) IS NOT DISTINCT FROM to_jsonb(t.%1$I)', u), ' AND ')
                        FROM unnest(s.columns) u), 'true');
    firsts := format('(SELECT DISTINCT ON (b.key) b.key, b.old FROM pgcqrs.batch b WHERE b.relid = %L::regclass ORDER BY b.key, b.seq) f',
                     source::text);
    needed := s.columns || s.key;
    SELECT string_agg(CASE WHEN a.attname = ANY (needed) THEN format('r.%I', a.attname)
                           ELSE format('NULL::%s AS %I', pgcqrs.plain_type(source, a.attname), a.attname) END,
                      ', ' ORDER BY a.attnum),
           string_agg(format('%I %s', a.attname, pgcqrs.plain_type(source, a.attname)), ', ' ORDER BY a.attnum)
             FILTER (WHERE a.attname = ANY (needed))
      INTO rebuilt, shape
      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('CREATE SCHEMA %I', plus);
    EXECUTE format('CREATE SCHEMA %I', minus);
    EXECUTE format('CREATE SCHEMA %I', old);
    EXECUTE format('CREATE VIEW %I.%I AS SELECT t.* FROM %s JOIN %s t ON %s WHERE f.old IS NULL OR NOT (%s)',
                   plus, relname, firsts, source, pgcqrs.key_join(source, s.key, 'f'), same);
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM %s CROSS JOIN LATERAL jsonb_to_record(f.old) AS r(%s)
         WHERE f.old IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s t WHERE %s AND %s)$v$,
                   minus, relname, rebuilt, firsts, shape, source, pkeq, same);
    -- Two parts without conditions of their own, so that a join reaches
    -- each through its indexes, the condition applied to both.
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_first_rows (LIKE %s)', old, source);
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM (SELECT t.*, false AS pgcqrs_first FROM %s t
                        UNION ALL
                        SELECT f.*, true FROM %I.pgcqrs_first_rows f) u
         WHERE u.pgcqrs_first
            OR NOT EXISTS (SELECT FROM pgcqrs.batch b
                            WHERE b.relid = %L::regclass AND b.key = jsonb_build_array(%s))$v$,
                   old, relname,
                   (SELECT pgcqrs.ident_list(array_agg(a.attname::text ORDER BY a.attnum), 'u.')
                      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped),
                   source, old, source::text, pgcqrs.ident_list(s.key, 'u.'));
    EXECUTE format('CREATE INDEX ON %I.pgcqrs_first_rows (%s)', old, pgcqrs.ident_list(s.key, ''));
    UPDATE pgcqrs.read_model_sources r
       SET term        = delta_stand_in.n,
           delta_kinds = kinds,
           plus_path   = format('%I, %s', plus, path),
           minus_path  = format('%I, %s', minus, path),
           old_schema  = quote_ident(old),
           -- (the working table's own row type: a column added to the
           -- table later is not in it)
           first_sql   = format('INSERT INTO %1$I.pgcqrs_first_rows SELECT r.* FROM %2$s CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$I.pgcqrs_first_rows, f.old) r WHERE f.old IS NOT NULL',
                                old, firsts)
     WHERE r.model = delta_stand_in.model AND r.source = delta_stand_in.source;
    PERFORM pgcqrs.delta_statements(model);
END
$fn$;
-- V12's table with the old versions of the batch's changed rows, indexed
-- on the source's primary key.
CREATE OR REPLACE FUNCTION pgcqrs.any_stand_in(model text, source regclass, n int) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    own     text := format('pgcqrs_a%s_%s', n, model);
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    key     text[] := (SELECT r.key FROM pgcqrs.read_model_sources r
                        WHERE r.model = any_stand_in.model AND r.source = any_stand_in.source);
BEGIN
    EXECUTE format('CREATE SCHEMA %I', own);
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_old_rows (LIKE %s)', own, source);
    IF cardinality(key) > 0 THEN
        EXECUTE format('CREATE INDEX ON %I.pgcqrs_old_rows (%s)', own, pgcqrs.ident_list(key));
    END IF;
    EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM %s UNION ALL SELECT * FROM %I.pgcqrs_old_rows',
                   own, relname, source, own);
    UPDATE pgcqrs.read_model_sources r
       SET any_schema = quote_ident(own),
           old_sql = format($q$INSERT INTO %1$I.pgcqrs_old_rows
SELECT r.* FROM pgcqrs.batch b CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$I.pgcqrs_old_rows, b.old) r
 WHERE b.relid = %2$L::regclass AND b.old IS NOT NULL$q$, own, any_stand_in.source::text)
     WHERE r.model = any_stand_in.model AND r.source = any_stand_in.source;
END
$fn$;

-- Every model kept in batches: its tables of old versions indexed, its
-- delta stand-ins made again.
DO $again$
DECLARE
    s pgcqrs.read_model_sources;
BEGIN
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r
              WHERE r.any_schema IS NOT NULL AND cardinality(r.key) > 0 ORDER BY r.model, r.source LOOP
        EXECUTE format('CREATE INDEX ON %s.pgcqrs_old_rows (%s)', s.any_schema, pgcqrs.ident_list(s.key));
    END LOOP;
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r WHERE r.term IS NOT NULL ORDER BY r.model, r.source LOOP
        EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.plus_path, ',', 1));
        EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.minus_path, ',', 1));
        EXECUTE format('DROP SCHEMA %s CASCADE', s.old_schema);
        PERFORM pgcqrs.delta_stand_in(s.model, s.source, substring(s.delta_schema FROM '^pgcqrs_d(\d+)_')::int,
                                     substr(s.search_path, strpos(s.search_path, ', ') + 2));
    END LOOP;
END
$again$;
