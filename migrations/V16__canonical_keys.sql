-- Captured keys that do not depend on the writer's session.
--
-- A captured change names its row by the source's primary key as JSON
-- (pgcqrs.changes.key), and a batch groups changes by that JSON and looks
-- rows up in it. JSON renders some types by session settings: a
-- timestamptz in the session's TimeZone, a float by extra_float_digits,
-- an interval by IntervalStyle, a bytea by bytea_output. A row of a table
-- keyed by (sensor, at timestamptz), changed in one batch from two
-- sessions in different time zones, had two keys: two "first" versions
-- went into the delta, and the model's sums were off with no error. A
-- batch that also compared such a key with one it built in the refresher's
-- own session missed the row when the zones differed.
--
-- Now the capture triggers run with those settings fixed (UTC, shortest
-- exact floats, postgres intervals, hex bytea), so the old rows they keep
-- read the same from any session, and a key part of any type but the
-- plain ones (text, integers, numeric, uuid, boolean, date, timestamp) is
-- rendered through pgcqrs.canonical_json, with the same settings, both
-- where it is captured and where a batch builds it. Keys of plain types
-- (every built-in model's) are built as before, at no cost. A model that
-- reads a table keyed by such a type is recomputed once, at its next
-- refresh: it may already have counted a row twice, and the changes
-- captured before this migration name rows the old way.

-- A value as JSON, the same from every session.
CREATE FUNCTION pgcqrs.canonical_json(v anyelement) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET TimeZone = 'UTC' SET extra_float_digits = 1 SET IntervalStyle = postgres SET bytea_output = hex
AS $$ SELECT to_jsonb(v) $$;
COMMENT ON FUNCTION pgcqrs.canonical_json(anyelement) IS
    'A value as JSON, rendered with fixed settings (UTC, exact floats, postgres intervals, hex bytea): a captured key part reads the same from every session.';

-- Whether a column's JSON reads the same whatever the session's settings
-- (its base type, through domains).
CREATE FUNCTION pgcqrs.renders_alike(source regclass, col text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t(oid) AS (
        SELECT a.atttypid FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        SELECT y.typbasetype FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype = 'd'
    )
    SELECT coalesce(bool_or(t.oid = ANY (ARRAY['text', 'varchar', 'bpchar', 'name', 'int2', 'int4', 'int8', 'oid',
                                               'numeric', 'uuid', 'bool', 'date', 'timestamp']::regtype[])), false)
      FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype <> 'd'
$$;

-- The JSON key of a row of source (columns key, each after prefix), as a
-- capture trigger writes it: jsonb_build_array of the key's columns, those
-- whose JSON depends on the session through pgcqrs.canonical_json.
CREATE FUNCTION pgcqrs.key_json(source regclass, key text[], prefix text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('jsonb_build_array(%s)',
                  string_agg(CASE WHEN pgcqrs.renders_alike(source, p) THEN prefix || quote_ident(p)
                                  ELSE format('pgcqrs.canonical_json(%s%I)', prefix, p) END,
                             ', ' ORDER BY i))
      FROM unnest(key) WITH ORDINALITY AS x(p, i)
$$;

-- V12's capture, with fixed settings and canonical keys.
CREATE OR REPLACE FUNCTION pgcqrs.capture(source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    pk    text[];
    fname text := (SELECT format('capture_%s', left(md5(n.nspname || '.' || c.relname), 20))
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source);
    keyx  text;
    keyo  text;
    same  text;
BEGIN
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
        same := format('(%s) = (%s)', pgcqrs.ident_list(pk, 'pgcqrs_n.'), pgcqrs.ident_list(pk, 'pgcqrs_o.'));
    END IF;
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION pgcqrs.%1$I() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        SET TimeZone = 'UTC' SET extra_float_digits = 1 SET IntervalStyle = postgres SET bytea_output = hex
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
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = source AND tgname = 'pgcqrs_capture_insert') THEN
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

-- V14's delta stand-ins, the table as it was probing the batch with the
-- key as the capture writes it.
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

-- Every captured table's trigger function written again.
SELECT pgcqrs.capture(t.tgrelid::regclass) FROM pg_trigger t WHERE t.tgname = 'pgcqrs_capture_insert';

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

-- The models that read a table keyed by such a type: recomputed once, at
-- their next refresh (the path a restored model takes, whose snapshot this
-- cluster did not record). The recomputation covers every change committed
-- before it.
UPDATE read.read_model_status st SET cluster_id = NULL
 WHERE st.view_name IN (SELECT s.model FROM pgcqrs.read_model_sources s, unnest(s.key) p
                         WHERE NOT pgcqrs.renders_alike(s.source, p));
