-- Delta stand-ins without the "unchanged?" test.
--
-- A model kept by delta reads a changed table through two stand-ins: the
-- rows a batch changed as they are now (plus) and as they first were
-- (minus). Each left out the rows whose columns the query reads were the
-- same in both, by comparing the captured old row with the row now: one
-- more index probe per change in the minus part, and in both parts a
-- comparison per column read, its captured value taken out of JSON. For
-- 10,000 status changes at 1M orders that was 40% of the two parts'
-- time (daily_sales: 57-62 ms and 63-64 ms, against 40 and 35-36 ms
-- without, in alternating runs on one database).
--
-- A row the same in both parts cancels out: the query runs over each
-- part, the merge adds the plus part's counts and sums and takes the minus
-- part's away, and an extreme the minus part removes is settled by the
-- plus part's equal one. So both parts now hold every changed row, and a
-- row changed only in columns the query does not read costs its share of
-- the aggregation instead of two comparisons. (A group whose sum holds
-- NaN or an infinity is recomputed when such a row passes, as when any
-- does.) The key views of the models kept by key keep the test: there a
-- row left out is a key not re-projected.

-- V16's delta stand-ins, keys read through V18's key_join, without the
-- test.
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
    -- every changed row as it is now, and as it was first: a row the same
    -- in both (in the columns the query reads) cancels out
    EXECUTE format('CREATE VIEW %I.%I AS SELECT t.* FROM %s JOIN %s t ON %s',
                   plus, relname, firsts, source, pgcqrs.key_join(source, s.key, 'f'));
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM %s CROSS JOIN LATERAL jsonb_to_record(f.old) AS r(%s)
         WHERE f.old IS NOT NULL$v$,
                   minus, relname, rebuilt, firsts, shape);
    -- Two parts without conditions of their own, so that a join reaches
    -- each through its indexes, the condition applied to both.
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_first_rows (LIKE %s)', old, source);
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM (SELECT t.*, false AS pgcqrs_first FROM %s t
                        UNION ALL
                        SELECT f.*, true FROM %I.pgcqrs_first_rows f) u
         WHERE u.pgcqrs_first
            OR NOT EXISTS (SELECT FROM pgcqrs.batch b
                            WHERE b.relid = %L::regclass AND b.key = %s)$v$,
                   old, relname,
                   (SELECT pgcqrs.ident_list(array_agg(a.attname::text ORDER BY a.attnum), 'u.')
                      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped),
                   source, old, source::text, pgcqrs.key_json(source, s.key, 'u.'));
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

-- Every model's delta stand-ins made again.
DO $again$
DECLARE
    s pgcqrs.read_model_sources;
BEGIN
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r WHERE r.term IS NOT NULL ORDER BY r.model, r.source LOOP
        EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.plus_path, ',', 1));
        EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.minus_path, ',', 1));
        EXECUTE format('DROP SCHEMA %s CASCADE', s.old_schema);
        PERFORM pgcqrs.delta_stand_in(s.model, s.source, substring(s.delta_schema FROM '^pgcqrs_d(\d+)_')::int,
                                     substr(s.search_path, strpos(s.search_path, ', ') + 2));
    END LOOP;
END
$again$;
