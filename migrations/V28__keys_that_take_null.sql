-- A NULL in a key column of a model kept in batches no longer stops it,
-- nor goes missing.
--
-- A grouped model's key is its GROUP BY columns, and a GROUP BY gives a
-- group for NULL like any other (a product without a category, an hstore
-- without the attribute grouped by). Its table's key was a PRIMARY KEY,
-- NOT NULL: the first such group failed every batch by delta and every
-- whole recomputation ("null value in column ... violates not-null
-- constraint") until someone changed the row, and a model whose groups a
-- batch recomputes by key silently went without it (a key holding NULL
-- finds no row by =).
--
-- Every statement of a model kept in batches now compares keys so that
-- NULL finds NULL (null_safe_statements), where a key holds one, and
-- only there:
--
-- * a whole recomputation removes a row whose key holds a NULL only if
--   no row of the query has that key (IS NOT DISTINCT FROM); rows without
--   a NULL keep the hashed anti-join;
-- * re-projecting keys also looks up the query's rows whose key holds a
--   NULL, once per batch and only when a key of the batch holds one, and
--   removes those gone from the query;
-- * a delta takes a group whose key holds a NULL for unsure: the group is
--   recomputed by key instead.
--
-- The model's table keeps its NOT NULL primary key until a NULL comes.
-- Then the refresher, meeting the not-null error in a key column of the
-- model's own table, calls keys_may_be_null: the key becomes UNIQUE NULLS
-- NOT DISTINCT (one row per key, NULL a value like any other, as GROUP BY
-- has it) and its columns take NULL; the refresh runs again.
--
-- A declaration still refuses a key that is NULL in rows it finds then.

-- Met a NULL in key column col of its table: read model model's key made
-- to take NULLs, and its statements to compare them. True when done now;
-- false when the model's key takes them already, or col is no key column
-- of a model kept in batches.
CREATE FUNCTION pgcqrs.keys_may_be_null(model text, col text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    m       pgcqrs.read_models;
    target  regclass;
    pkey    name;
    c       text;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = keys_may_be_null.model FOR UPDATE;
    IF NOT FOUND OR m.kept <> 'incremental' OR NOT col = ANY (m.key) THEN
        RETURN false;
    END IF;
    target := format('read.%I', m.name)::regclass;
    SELECT k.conname INTO pkey FROM pg_constraint k WHERE k.conrelid = target AND k.contype = 'p';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- its statements must compare NULL keys first (a statement of
    -- another shape than a declaration writes: the model stays stopped)
    PERFORM pgcqrs.null_safe_statements(m.name);
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', target, pkey);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE NULLS NOT DISTINCT (%s)',
                   target, m.name || '_pkey', pgcqrs.ident_list(m.key));
    FOREACH c IN ARRAY m.key LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL', target, c);
    END LOOP;
    RETURN true;
END
$fn$;

-- The model's statements (read_models.full_sql, apply_sql, delta_sql) made
-- to compare keys that hold NULL; those that do already are left as they
-- are. A statement not of the shape a declaration writes is an error.
CREATE FUNCTION pgcqrs.null_safe_statements(model text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    m        pgcqrs.read_models;
    target   text;
    keyeq    text;
    nulls_t  text;
    nulls_k  text;
    nulls_v  text;
    nulls_f  text;
    nulls_d  text;
    same_vt  text;
    same_kt  text;
    same_kv  text;
    new_full  text;
    new_apply text;
    new_delta text;
    old       text;
    rows      text;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = null_safe_statements.model FOR UPDATE;
    IF NOT FOUND OR m.kept <> 'incremental' THEN
        RETURN;
    END IF;
    target := format('read.%I', m.name);
    keyeq := (SELECT string_agg(format('v.%1$I = t.%1$I', k), ' AND ') FROM unnest(m.key) k);
    nulls_t := (SELECT string_agg(format('t.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_k := (SELECT string_agg(format('k.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_v := (SELECT string_agg(format('v.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_f := (SELECT string_agg(format('%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_d := (SELECT string_agg(format('d.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    same_vt := (SELECT string_agg(format('v.%1$I IS NOT DISTINCT FROM t.%1$I', k), ' AND ') FROM unnest(m.key) k);
    same_kt := (SELECT string_agg(format('k.%1$I IS NOT DISTINCT FROM t.%1$I', k), ' AND ') FROM unnest(m.key) k);
    same_kv := (SELECT string_agg(format('k.%1$I IS NOT DISTINCT FROM v.%1$I', k), ' AND ') FROM unnest(m.key) k);

    new_full := m.full_sql;
    IF strpos(new_full, 'pgcqrs_null_keys') = 0 THEN
        -- the query's rows as a declaration reads them (fresh), or as the
        -- built-in models' statements do (the query itself)
        rows := CASE WHEN strpos(new_full, 'fresh AS MATERIALIZED') > 0 THEN 'fresh'
                     ELSE format('pgcqrs_defs.%I', m.name) END;
        old := format('DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM %s v WHERE %s)', target, rows, keyeq);
        IF strpos(new_full, old) = 0 THEN
            RAISE EXCEPTION 'the whole recomputation of read model % is not of the shape expected', m.name;
        END IF;
        new_full := replace(new_full, old,
                            format('%s AND (NOT (%s) OR NOT EXISTS (SELECT 1 FROM %s v WHERE %s)) /* pgcqrs_null_keys */',
                                   old, nulls_t, rows, same_vt));
    END IF;

    new_apply := m.apply_sql;
    IF new_apply IS NOT NULL AND strpos(new_apply, 'pgcqrs_null_keys') = 0 THEN
        old := format(E' OFFSET 0) v\n),');
        IF strpos(new_apply, old) = 0 THEN
            RAISE EXCEPTION 'the batch statement of read model % is not of the shape expected', m.name;
        END IF;
        -- the rows of keys holding a NULL, looked up once, only when the
        -- batch has such a key
        new_apply := replace(new_apply, old, format(E' OFFSET 0) v\n    UNION ALL\n'
            '    SELECT v.* FROM pgcqrs_defs.%I v\n'
            '     WHERE (%s) AND EXISTS (SELECT 1 FROM k WHERE %s)\n'
            '       AND EXISTS (SELECT 1 FROM k WHERE %s)\n),',
            m.name, nulls_v, same_kv, nulls_k));
        old := format('AND (%s) NOT IN (SELECT %s FROM fresh)', pgcqrs.ident_list(m.key, 't.'), pgcqrs.ident_list(m.key));
        IF strpos(new_apply, old) = 0 THEN
            RAISE EXCEPTION 'the batch statement of read model % is not of the shape expected', m.name;
        END IF;
        new_apply := replace(new_apply, old,
                             format('AND (%s) NOT IN (SELECT %s FROM fresh WHERE NOT (%s))',
                                    pgcqrs.ident_list(m.key, 't.'), pgcqrs.ident_list(m.key), nulls_f));
        old := E'    RETURNING 1\n)\nSELECT (SELECT count(*) FROM k) AS keys,\n'
               '       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows';
        IF strpos(new_apply, old) = 0 THEN
            RAISE EXCEPTION 'the batch statement of read model % is not of the shape expected', m.name;
        END IF;
        new_apply := replace(new_apply, old, format(E'    RETURNING 1\n),\n'
            'pgcqrs_null_keys AS (\n'
            '    DELETE FROM %s t\n'
            '     WHERE (%s) AND EXISTS (SELECT 1 FROM k WHERE %s)\n'
            '       AND NOT EXISTS (SELECT 1 FROM fresh v WHERE %s)\n'
            '       AND EXISTS (SELECT 1 FROM k WHERE %s)\n'
            '    RETURNING 1\n'
            ')\n'
            'SELECT (SELECT count(*) FROM k) AS keys,\n'
            '       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed)'
            ' + (SELECT count(*) FROM pgcqrs_null_keys) AS changed_rows',
            target, nulls_t, same_kt, same_vt, nulls_k));
    END IF;

    new_delta := m.delta_sql;
    IF new_delta IS NOT NULL AND strpos(new_delta, 'pgcqrs_null_keys') = 0 THEN
        IF strpos(new_delta, ') AS pgcqrs_unsure') = 0 THEN
            RAISE EXCEPTION 'the delta statement of read model % is not of the shape expected', m.name;
        END IF;
        -- a group whose key holds a NULL finds no row by =: recomputed
        new_delta := replace(new_delta, ') AS pgcqrs_unsure',
                             format(' OR %s /* pgcqrs_null_keys */) AS pgcqrs_unsure', nulls_d));
    END IF;

    UPDATE pgcqrs.read_models r
       SET full_sql = new_full, apply_sql = new_apply, delta_sql = new_delta
     WHERE r.name = m.name
       AND (r.full_sql, r.apply_sql, r.delta_sql) IS DISTINCT FROM (new_full, new_apply, new_delta);
END
$fn$;
REVOKE EXECUTE ON FUNCTION pgcqrs.keys_may_be_null(text, text), pgcqrs.null_safe_statements(text) FROM PUBLIC;

-- A declaration's statements, and those stand_ins_again writes again,
-- made so.
DO $patch$
DECLARE
    src   text;
    fixed text;
BEGIN
    SELECT p.prosrc INTO src FROM pg_proc p
     WHERE p.oid = 'pgcqrs.define_read_model(text, text, text[], text, text, text[], text)'::regprocedure;
    fixed := replace(src, $old$
    INSERT INTO read.read_model_status (view_name$old$, $new$
    IF kept = 'incremental' THEN
        PERFORM pgcqrs.null_safe_statements(name);
    END IF;
    INSERT INTO read.read_model_status (view_name$new$);
    IF fixed = src OR strpos(src, 'null_safe_statements') > 0 THEN
        RAISE EXCEPTION 'pgcqrs.define_read_model does not end as expected';
    END IF;
    EXECUTE format($f$CREATE OR REPLACE FUNCTION pgcqrs.define_read_model(
        name text, query text, key text[], mode text DEFAULT 'auto', schedule text DEFAULT NULL,
        filterable text[] DEFAULT '{}', description text DEFAULT NULL) RETURNS void
        LANGUAGE plpgsql AS %L$f$, fixed);

    SELECT p.prosrc INTO src FROM pg_proc p WHERE p.oid = 'pgcqrs.stand_ins_again(text)'::regprocedure;
    fixed := replace(src, $old$
    -- a mark no cluster has: recomputed whole, once$old$, $new$
    PERFORM pgcqrs.null_safe_statements(m.name);
    -- a mark no cluster has: recomputed whole, once$new$);
    IF fixed = src THEN
        RAISE EXCEPTION 'pgcqrs.stand_ins_again does not end as expected';
    END IF;
    EXECUTE format('CREATE OR REPLACE FUNCTION pgcqrs.stand_ins_again(model text) RETURNS void LANGUAGE plpgsql AS %L', fixed);
END
$patch$;
-- (CREATE OR REPLACE resets a function's settings: V21's and V27's again)
ALTER FUNCTION pgcqrs.define_read_model(text, text, text[], text, text, text[], text)
    SET client_min_messages = warning;
ALTER FUNCTION pgcqrs.stand_ins_again(text) SET client_min_messages = warning;

-- Every model kept in batches: its statements made so. One that cannot be
-- (not of the shape a declaration writes) is left as it was, with a
-- warning: a NULL in its key stops it, as before.
DO $again$
DECLARE
    m text;
BEGIN
    FOR m IN SELECT r.name FROM pgcqrs.read_models r WHERE r.kept = 'incremental' ORDER BY r.name LOOP
        BEGIN
            PERFORM pgcqrs.null_safe_statements(m);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'the statements of read model % were not made to compare NULL keys: %', m, SQLERRM;
        END;
    END LOOP;
END
$again$;

