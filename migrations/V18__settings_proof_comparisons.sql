-- Keys and comparisons that hold whatever the sessions' settings, and key
-- types that no longer stop a model or a table.
--
-- V16 fixed the settings the capture triggers render rows with, and named
-- a row by its key as JSON rendered with those settings. Reviews found
-- what was left:
--
-- * Whether a row changed in a batch was asked by comparing its captured
--   JSON with the current row rendered in the refresher's session (and a
--   keyed model's upsert compares rows by their text). A refresher with
--   extra_float_digits = 0 rendered 0.10000000000000002 as 0.1, took a
--   changed float for unchanged, and kept the old value for good; a
--   refresher outside UTC re-projected every timestamptz row it was
--   given. Floats and times with zone are now compared as values (the
--   captured text read back as the column's type, exact for both), other
--   types whose JSON depends on the session through canonical_json, the
--   others through their JSON as before. (Refreshes also set
--   extra_float_digits = 1 themselves.)
-- * DateStyle was not fixed: a range of dates written under 'SQL, MDY'
--   was captured as 01/17/2026, and a refresher under 'SQL, DMY' failed
--   every batch on it, or read another date. The capture and
--   canonical_json now fix it too.
-- * A key part whose equality is looser than its text was two keys for
--   one row after an update that rewrote it to an equal value: interval
--   '1 day' and '24:00:00', char values with and without their padding,
--   citext 'A' and 'a'. Such parts are now rendered normalised
--   (justify_interval, the char value as text, lower() in the database's
--   collation). A key part with a nondeterministic collation has no such
--   form: a model that reads such a table is now kept whole, as one over
--   a table without a primary key.
-- * A key part of an array, composite or jsonb type failed every batch
--   (a cast from the JSON key's text does not read it back), and one of
--   an extension's type (ltree) failed every update of the table (the
--   capture paired old and new rows with = under a search_path of
--   pg_catalog alone).
-- * A model to recompute once was marked with cluster_id = NULL, which
--   does nothing where pgcqrs.cluster_id() is itself NULL (services that
--   withhold pg_control_system()). The mark is now 0, which no cluster
--   has; on such clusters the models V16 and V17 marked are marked again.
-- * capture() on a table renamed since its capture wrote a function its
--   triggers never call, and a table created under the old name took
--   over the renamed one's function. It now rewrites the function the
--   triggers call, and names a new table's function by the table's oid.

-- V16's canonical_json with DateStyle fixed as well.
CREATE OR REPLACE FUNCTION pgcqrs.canonical_json(v anyelement) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET TimeZone = 'UTC' SET extra_float_digits = 1 SET IntervalStyle = postgres SET bytea_output = hex
SET DateStyle = 'ISO, MDY'
AS $$ SELECT to_jsonb(v) $$;
COMMENT ON FUNCTION pgcqrs.canonical_json(anyelement) IS
    'A value as JSON, rendered with fixed settings (UTC, exact floats, postgres intervals, hex bytea, ISO dates): a captured value reads the same from every session.';

-- V16's renders_alike, and the types whose JSON does not depend on the
-- session either: jsonb, json, enums, and arrays of any of these. (An
-- "unchanged?" test or a key part of these types went through
-- canonical_json, which its settings keep from being inlined: 2.7 µs a
-- row and column for nothing.)
CREATE OR REPLACE FUNCTION pgcqrs.renders_alike(source regclass, col text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t(oid) AS (
        SELECT a.atttypid FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        -- through domains, and from an array to its elements
        SELECT CASE WHEN y.typtype = 'd' THEN y.typbasetype ELSE y.typelem END
          FROM t JOIN pg_type y ON y.oid = t.oid
         WHERE y.typtype = 'd' OR (y.typcategory = 'A' AND y.typelem <> 0)
    )
    SELECT coalesce(bool_or(t.oid = ANY (ARRAY['text', 'varchar', 'bpchar', 'name', 'int2', 'int4', 'int8', 'oid',
                                               'numeric', 'uuid', 'bool', 'date', 'timestamp', 'jsonb', 'json']::regtype[])
                            OR y.typtype = 'e'), false)
      FROM t JOIN pg_type y ON y.oid = t.oid
     WHERE y.typtype <> 'd' AND NOT (y.typcategory = 'A' AND y.typelem <> 0)
$$;

-- A column's base type, through domains.
CREATE FUNCTION pgcqrs.base_type(source regclass, col text) RETURNS regtype
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t(oid) AS (
        SELECT a.atttypid FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        SELECT y.typbasetype FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype = 'd'
    )
    SELECT t.oid::regtype FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype <> 'd'
$$;

-- One part of a captured key (column col of a row, after prefix), as JSON
-- that reads the same from every session and is the same for equal values.
CREATE FUNCTION pgcqrs.key_part(source regclass, col text, prefix text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN b = 'bpchar'::regtype THEN format('%s%I::text', prefix, col)
                WHEN pgcqrs.renders_alike(source, col) THEN prefix || quote_ident(col)
                -- (justify_interval overflows on intervals of millions of
                -- years: those are left as they are)
                WHEN b = 'interval'::regtype
                THEN format($f$pgcqrs.canonical_json(CASE WHEN %1$s%2$I BETWEEN interval '-100000 years' AND interval '100000 years'
                                                        THEN justify_interval(%1$s%2$I) ELSE %1$s%2$I END)$f$, prefix, col)
                -- (citext compares in the database's collation, whatever
                -- the column's)
                WHEN y.typname = 'citext' THEN format('lower(%s%I::text COLLATE "default")', prefix, col)
                ELSE format('pgcqrs.canonical_json(%s%I)', prefix, col) END
      FROM pgcqrs.base_type(source, col) b JOIN pg_type y ON y.oid = b
$$;

-- V16's key_json, through key_part.
CREATE OR REPLACE FUNCTION pgcqrs.key_json(source regclass, key text[], prefix text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('jsonb_build_array(%s)', string_agg(pgcqrs.key_part(source, p, prefix), ', ' ORDER BY i))
      FROM unnest(key) WITH ORDINALITY AS x(p, i)
$$;

-- V13's key_join, reading a key part of an array or composite type (a
-- JSON array or object, which a cast from text does not read) through the
-- table's row type, and one of type jsonb or json as JSON (a JSON string
-- loses its quotes as text). Batches of models over tables keyed by such
-- types failed, every one.
CREATE OR REPLACE FUNCTION pgcqrs.key_join(source regclass, key text[], batch text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(format('t.%I = %s', p,
                             CASE WHEN b IN ('jsonb'::regtype, 'json'::regtype)
                                  THEN format('(%s.key -> %s)::%s', batch, i - 1, b)
                                  WHEN y.typtype = 'c' OR (y.typcategory = 'A' AND y.typelem <> 0)
                                  THEN format('(jsonb_populate_record(NULL::%s, jsonb_build_object(%L, %s.key -> %s))).%I',
                                              source, p, batch, i - 1, p)
                                  ELSE format('(%s.key ->> %s)::%s', batch, i - 1, pgcqrs.plain_type(source, p)) END),
                      ' AND ' ORDER BY i)
      FROM unnest(key) WITH ORDINALITY AS x(p, i)
      CROSS JOIN LATERAL pgcqrs.base_type(source, p) b
      JOIN pg_type y ON y.oid = b
$$;

-- Whether column col of a captured old row (JSON, the expression old) is
-- the same as in the row cur, asked so that the answer does not depend on
-- the session it is asked in.
CREATE FUNCTION pgcqrs.unchanged(source regclass, col text, old text, cur text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN pgcqrs.renders_alike(source, col)
                THEN format('(%s -> %L) IS NOT DISTINCT FROM to_jsonb(%s.%I)', old, col, cur, col)
                WHEN pgcqrs.base_type(source, col) IN ('float4'::regtype, 'float8'::regtype, 'timestamptz'::regtype)
                THEN format('(%s ->> %L)::%s IS NOT DISTINCT FROM %s.%I', old, col, pgcqrs.plain_type(source, col), cur, col)
                ELSE format('(%s -> %L) IS NOT DISTINCT FROM pgcqrs.canonical_json(%s.%I)', old, col, cur, col) END
$$;

REVOKE EXECUTE ON FUNCTION pgcqrs.base_type(regclass, text), pgcqrs.key_part(regclass, text, text),
                           pgcqrs.key_json(regclass, text[], text), pgcqrs.renders_alike(regclass, text),
                           pgcqrs.unchanged(regclass, text, text, text)
    FROM PUBLIC;

-- V16's capture, with DateStyle fixed, keys through key_part, old and new
-- rows paired by each key type's own =, and the function its triggers
-- already call kept.
CREATE OR REPLACE FUNCTION pgcqrs.capture(source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    pk       text[];
    fname    text;
    captured boolean := EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = source AND tgname = 'pgcqrs_capture_insert');
    keyx     text;
    keyo     text;
    same     text;
BEGIN
    -- the function its triggers call (the table may have been renamed
    -- since), or one named by the table's oid (a name taken from the
    -- table's would be the one a renamed table's triggers still call)
    fname := coalesce((SELECT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                        WHERE t.tgrelid = source AND t.tgname = 'pgcqrs_capture_insert'),
                      format('capture_%s', source::oid));
    SELECT array_agg(a.attname::text ORDER BY k.i)
      INTO pk
      FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
     WHERE x.indrelid = source AND x.indisprimary;
    IF pk IS NULL THEN
        keyx := 'NULL::jsonb';
        keyo := 'NULL::jsonb';
        same := 'false';
    ELSE
        keyx := pgcqrs.key_json(source, pk, 'pgcqrs_n.');
        keyo := pgcqrs.key_json(source, pk, 'pgcqrs_o.');
        -- each part's equality operator named with its schema: the
        -- trigger's search_path holds pg_catalog alone, where an
        -- extension's type (ltree, citext) has none, and every update
        -- failed or compared the key as text
        same := (SELECT string_agg(format('pgcqrs_n.%1$I %2$s pgcqrs_o.%1$I',
                                          p, coalesce((SELECT format('OPERATOR(%I.=)', n.nspname)
                                                         FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                                                        WHERE o.oprname = '=' AND o.oprleft = b AND o.oprright = b
                                                        ORDER BY n.nspname = 'pg_catalog' DESC LIMIT 1), '=')),
                                   ' AND ')
                   FROM unnest(pk) p CROSS JOIN LATERAL pgcqrs.base_type(source, p) b);
    END IF;
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION pgcqrs.%1$I() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        SET TimeZone = 'UTC' SET extra_float_digits = 1 SET IntervalStyle = postgres SET bytea_output = hex
        SET DateStyle = 'ISO, MDY'
        AS $body$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', %3$s FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', %3$s, to_jsonb(pgcqrs_o)
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON %5$s
                 WHERE to_jsonb(pgcqrs_n) IS DISTINCT FROM to_jsonb(pgcqrs_o)
                UNION ALL
                SELECT TG_RELID, 'D', %4$s, to_jsonb(pgcqrs_o)
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE %5$s)
                UNION ALL
                SELECT TG_RELID, 'I', %3$s, NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE %5$s);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', %4$s, to_jsonb(pgcqrs_o) FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $body$ $f$, fname, source::oid, keyx, keyo, same);
    IF captured THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_insert, ENABLE ALWAYS TRIGGER pgcqrs_capture_update', source);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_delete', source);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate', source);
END
$fn$;

-- A table keyed by a column with a nondeterministic collation: its rows
-- cannot be named by their keys' text, so a model reading it is kept
-- whole, as one over a table without a primary key.
DO $patch$
DECLARE
    src   text;
    fixed text;
BEGIN
    SELECT p.prosrc INTO src FROM pg_proc p
     WHERE p.oid = 'pgcqrs.define_read_model(text, text, text[], text, text, text[], text)'::regprocedure;
    fixed := replace(src, $old$        why := 'a table it reads has no primary key';
    ELSIF$old$, $new$        why := 'a table it reads has no primary key';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel)
                    JOIN pg_index x ON x.indrelid = d.rel AND x.indisprimary
                    JOIN pg_attribute a ON a.attrelid = d.rel AND a.attnum = ANY (x.indkey)
                    JOIN pg_collation co ON co.oid = a.attcollation
                   WHERE NOT co.collisdeterministic) THEN
        why := 'a table it reads is keyed by a column with a nondeterministic collation';
    ELSIF$new$);
    IF fixed = src THEN
        RAISE EXCEPTION 'pgcqrs.define_read_model does not weigh its tables'' keys as expected';
    END IF;
    EXECUTE format($f$CREATE OR REPLACE FUNCTION pgcqrs.define_read_model(
        name text, query text, key text[], mode text DEFAULT 'auto', schedule text DEFAULT NULL,
        filterable text[] DEFAULT '{}', description text DEFAULT NULL) RETURNS void
        LANGUAGE plpgsql AS %L$f$, fixed);
END
$patch$;

-- V15's key views, asking whether a row changed through pgcqrs.unchanged.
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
    same := coalesce((SELECT string_agg(pgcqrs.unchanged(source, u, 'b.old', 't'), ' AND ')
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

-- Every captured table's trigger function written again.
SELECT pgcqrs.capture(t.tgrelid::regclass) FROM pg_trigger t WHERE t.tgname = 'pgcqrs_capture_insert';

-- Every model's key views made again. (The delta stand-ins, which ask
-- the same question and read keys through key_join, are made again by
-- V19, which drops the question from them.)
SELECT pgcqrs.key_view(s.model, s.source) FROM pgcqrs.read_model_sources s ORDER BY s.model, s.source;

-- Recomputed once, at their next refresh, with a mark no cluster has: the
-- models over a table whose key parts are now rendered otherwise
-- (intervals, char values, citext); and, where this cluster has no
-- identity (so that V16's and V17's marks did nothing), the models they
-- marked: those over a table keyed by a type canonical_json renders, and
-- those kept by delta whose sums hold a value that is not finite.
UPDATE read.read_model_status st SET cluster_id = 0
 WHERE st.view_name IN (SELECT s.model FROM pgcqrs.read_model_sources s, unnest(s.key) p
                         WHERE pgcqrs.base_type(s.source, p) IN ('interval'::regtype, 'bpchar'::regtype)
                            OR (SELECT y.typname = 'citext' FROM pg_type y WHERE y.oid = pgcqrs.base_type(s.source, p))
                            OR (pgcqrs.cluster_id() IS NULL AND NOT pgcqrs.renders_alike(s.source, p)));
DO $again$
DECLARE
    m     text;
    sums  text;
BEGIN
    IF pgcqrs.cluster_id() IS NOT NULL THEN
        RETURN;
    END IF;
    FOR m IN SELECT DISTINCT r.model FROM pgcqrs.read_model_sources r WHERE r.delta_kinds IS NOT NULL ORDER BY 1 LOOP
        SELECT string_agg(format('%I::numeric IN (''NaN'', ''Infinity'', ''-Infinity'')', a.attname), ' OR ')
          INTO sums
          FROM pg_attribute a
          JOIN LATERAL (SELECT r.delta_kinds FROM pgcqrs.read_model_sources r
                         WHERE r.model = m AND r.delta_kinds IS NOT NULL LIMIT 1) k ON true
         WHERE a.attrelid = format('pgcqrs_defs.%I', m)::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND k.delta_kinds[a.attnum] IN ('sum', 'sum0');
        CONTINUE WHEN sums IS NULL;
        EXECUTE format('UPDATE read.read_model_status SET cluster_id = 0
                         WHERE view_name = %L AND EXISTS (SELECT FROM read.%I WHERE %s)', m, m, sums);
    END LOOP;
END
$again$;

-- A model declared before this migration over a table keyed by a
-- nondeterministic collation was kept in batches, and a key rewritten to
-- an equal value in another form counted its row twice. Each is declared
-- again as it was, and so kept whole; one declared incremental explicitly
-- (or one that cannot be dropped, such as one a view depends on) is left
-- as it is, with a warning that says so.
DO $again$
DECLARE
    m pgcqrs.read_models;
BEGIN
    FOR m IN SELECT * FROM pgcqrs.read_models r
              WHERE r.kept = 'incremental'
                AND EXISTS (SELECT 1 FROM unnest(r.sources) src
                              JOIN pg_index x ON x.indrelid = src AND x.indisprimary
                              JOIN pg_attribute a ON a.attrelid = src AND a.attnum = ANY (x.indkey)
                              JOIN pg_collation co ON co.oid = a.attcollation
                             WHERE NOT co.collisdeterministic)
              ORDER BY r.name LOOP
        BEGIN
            IF m.mode = 'incremental' THEN
                RAISE EXCEPTION 'it is declared incremental';
            END IF;
            PERFORM pgcqrs.drop_read_model(m.name);
            PERFORM pgcqrs.define_read_model(m.name, m.query, m.key, m.mode, m.schedule, m.filterable, m.description);
            UPDATE pgcqrs.read_models r
               SET timeout_ms = m.timeout_ms, defined_at = m.defined_at, defined_by = m.defined_by
             WHERE r.name = m.name;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'read model % reads a table keyed by a nondeterministic collation and is still kept in batches (%): declare it again with mode => ''auto'' or ''full''',
                          m.name, SQLERRM;
        END;
    END LOOP;
END
$again$;
