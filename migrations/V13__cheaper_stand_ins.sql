-- Cheaper stand-ins, and every column a whole-row reference reads.
--
-- A delta batch of 10,000 changed orders spent most of its time in the
-- stand-ins rather than in the model's query: each changed key was cast
-- to its column's domain (write.entity_id, a regular expression checked
-- per row) before it could reach the table's index, and each old row was
-- rebuilt whole from its captured JSON, every column of it through its
-- domain's check. Keys are now compared as their base type, and a delta's
-- old rows rebuild only the columns the query reads, as base types: the
-- values were checked when they were written.
--
-- The columns a query reads were taken from the view's dependencies,
-- which list no column for a whole-row reference (to_jsonb(c), c.*
-- inside an expression): a change to a column read only that way was
-- taken for one the query does not see, and never applied. Such a
-- query now reads every column.

-- The type a column's values are compared as: a domain's base type (with
-- its modifier), any other type itself; with the column's collation when
-- it is not the base type's own (a domain's, or the column's COLLATE).
CREATE FUNCTION pgcqrs.plain_type(source regclass, col text) RETURNS text
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t(oid, mod) AS (
        SELECT a.atttypid, a.atttypmod FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        SELECT y.typbasetype, y.typtypmod FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype = 'd'
    )
    SELECT format_type(t.oid, t.mod)
           || coalesce((SELECT format(' COLLATE %I.%I', n.nspname, c.collname)
                          FROM pg_attribute a
                          JOIN pg_collation c ON c.oid = a.attcollation
                          JOIN pg_namespace n ON n.oid = c.collnamespace
                         WHERE a.attrelid = source AND a.attname = col
                           AND a.attcollation <> 0 AND a.attcollation <> y.typcollation), '')
      FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype <> 'd'
$$;

-- The columns of `source` the model's query reads: all of them when the
-- query has a whole-row reference anywhere (its dependencies name no
-- column for it), else those its dependencies name.
CREATE FUNCTION pgcqrs.used_columns(model text, source regclass) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN r.ev_action::text ~ ':varattno 0 '
                THEN (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                       WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped)
                ELSE (SELECT coalesce(array_agg(DISTINCT a.attname::text), '{}')
                        FROM pg_depend d
                        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       WHERE d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refobjid = source AND d.refobjsubid > 0) END
      FROM pg_rewrite r
     WHERE r.ev_class = format('pgcqrs_defs.%I', model)::regclass
$$;

-- `t.<key> = <the batch key's parts>`, each part read as its column's base type.
CREATE FUNCTION pgcqrs.key_join(source regclass, key text[], batch text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(format('t.%I = (%s.key ->> %s)::%s', p, batch, i - 1, pgcqrs.plain_type(source, p)), ' AND ' ORDER BY i)
      FROM unnest(key) WITH ORDINALITY AS x(p, i)
$$;

-- The key stand-in's view (V9): the rows the batch changed whose change
-- touches a column the query reads, as they are now and as they were.
CREATE FUNCTION pgcqrs.key_view(model text, source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    s       pgcqrs.read_model_sources;
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    same    text;
BEGIN
    SELECT * INTO s FROM pgcqrs.read_model_sources r WHERE r.model = key_view.model AND r.source = key_view.source;
    same := coalesce((SELECT string_agg(format('(b.old -> %1$L) IS NOT DISTINCT FROM to_jsonb(t.%1$I)', u), ' AND ')
                        FROM unnest(s.columns) u), 'true');
    EXECUTE format($v$
        CREATE OR REPLACE VIEW %1$I.%2$I AS
        SELECT t.* FROM pgcqrs.batch b JOIN %3$s t ON %4$s
         WHERE b.relid = %5$s AND b.op IN ('I', 'U') AND (b.old IS NULL OR NOT (%6$s))
        UNION ALL
        SELECT r.* FROM pgcqrs.batch b CROSS JOIN LATERAL jsonb_populate_record(NULL::%3$s, b.old) r
         WHERE b.relid = %5$s AND b.old IS NOT NULL
           AND (b.op = 'D' OR NOT EXISTS (SELECT 1 FROM %3$s t WHERE %7$s AND %8$s))$v$,
        s.delta_schema, relname, source, pgcqrs.key_join(source, s.key, 'b'),
        format('%L::regclass', source::text), same,
        (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(s.key) p),
        replace(same, 'b.old -> ', 'to_jsonb(r) -> '));
END
$fn$;

-- V9's key stand-in, its view now made by key_view.
CREATE OR REPLACE FUNCTION pgcqrs.key_stand_in(model text, source regclass, n int, path text, definition text,
                                               key text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    schema  text := format('pgcqrs_d%s_%s', n, model);
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    pk      text[];
    tree    text;
    relre   text;
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.i) INTO pk
      FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
     WHERE x.indrelid = source AND x.indisprimary;

    -- Read once and on the nullable side of an outer join, its missing
    -- rows show no change of it: joined inner, the stood-in query yields
    -- only the rows its changes are in, not every row of the other side.
    SELECT r.ev_action::text INTO tree
      FROM pg_rewrite r WHERE r.ev_class = format('pgcqrs_defs.%I', model)::regclass;
    IF regexp_count(tree, format(':rtekind 0 :relid %s ', source::oid)) = 1 THEN
        relre := regexp_replace(quote_ident(relname), '([\\.^$*+?()\[\]{}|])', '\\\1', 'g');
        definition := regexp_replace(definition, format('\mLEFT (JOIN %s )', relre), '\1', 'g');
        definition := regexp_replace(definition, format('\mFULL (JOIN %s )', relre), 'RIGHT \1', 'g');
    END IF;

    EXECUTE format('CREATE SCHEMA %I', schema);
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', schema,
                   format('pgcqrs: stand-in for %s while a batch of read model %s finds its keys.', source, model));
    INSERT INTO pgcqrs.read_model_sources (model, source, key, columns, delta_schema, search_path, keys_sql)
    VALUES (model, source, pk, pgcqrs.used_columns(model, source), schema, format('%I, %s', schema, path), format($q$
INSERT INTO pgcqrs.batch_keys (key)
SELECT DISTINCT jsonb_build_array(%1$s) FROM (%2$s) q$q$,
        pgcqrs.ident_list(key, 'q.'),
        regexp_replace(definition, ';\s*$', '')));
    PERFORM pgcqrs.key_view(model, source);
END
$fn$;

-- V12's delta stand-ins, cheaper: keys compared as their base types, and
-- the old rows (minus) rebuilt from their JSON with only the columns the
-- query reads (its key besides), as base types; the others are NULL.
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
         WHERE u.pgcqrs_first OR %s <> ALL (ARRAY(SELECT %s FROM pgcqrs.batch b WHERE b.relid = %L::regclass))$v$,
                   old, relname,
                   (SELECT pgcqrs.ident_list(array_agg(a.attname::text ORDER BY a.attnum), 'u.')
                      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped),
                   source, old,
                   -- a one-column key compared as itself, cheaper than as JSON
                   CASE WHEN cardinality(s.key) = 1 THEN format('u.%I', s.key[1])
                        ELSE format('jsonb_build_array(%s)', pgcqrs.ident_list(s.key, 'u.')) END,
                   CASE WHEN cardinality(s.key) = 1 THEN format('(b.key ->> 0)::%s', pgcqrs.plain_type(source, s.key[1]))
                        ELSE 'b.key' END,
                   source::text);
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

REVOKE EXECUTE ON FUNCTION pgcqrs.plain_type(regclass, text), pgcqrs.used_columns(text, regclass),
                           pgcqrs.key_join(regclass, text[], text), pgcqrs.key_view(text, regclass)
    FROM PUBLIC;

-- Every model kept in batches: the columns its query reads, its key
-- views, and its delta stand-ins made again.
UPDATE pgcqrs.read_model_sources s SET columns = pgcqrs.used_columns(s.model, s.source);
SELECT pgcqrs.key_view(s.model, s.source) FROM pgcqrs.read_model_sources s ORDER BY s.model, s.source;
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
