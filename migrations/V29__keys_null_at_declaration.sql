-- A key that is NULL in rows found at declaration is a group of its own,
-- as one that comes to be NULL later has been since V28.
--
-- A declaration refused such a key ("Key columns must never be NULL:
-- filter those rows out or coalesce the column"), while the same query
-- declared a moment before the first NULL came took it: a team grouping
-- by a column that is NULL in some rows had to change its query's answer
-- to declare it. Now:
--
-- * a model kept in batches whose key holds a NULL in the rows found gets
--   the key keys_may_be_null would give it at the first NULL met,
--   UNIQUE NULLS NOT DISTINCT, with nullable columns; one whose key holds
--   none keeps the NOT NULL primary key;
-- * a full model (a materialized view, which cannot declare a column NOT
--   NULL) is no longer checked for NULL keys; its unique index is NULLS
--   NOT DISTINCT, so that a key holding a NULL still names one row.
--   REFRESH ... CONCURRENTLY takes such an index as its unique index.
--
-- A key that is not unique is refused as before, NULL or not.
DO $patch$
DECLARE
    src   text;
    fixed text;
BEGIN
    SELECT p.prosrc INTO src FROM pg_proc p
     WHERE p.oid = 'pgcqrs.define_read_model(text, text, text[], text, text, text[], text)'::regprocedure;
    fixed := replace(src, $old$
            EXECUTE format('CREATE UNIQUE INDEX %I ON %s (%s)', name || '_pkey', target, keylist);$old$, $new$
            EXECUTE format('CREATE UNIQUE INDEX %I ON %s (%s) NULLS NOT DISTINCT', name || '_pkey', target, keylist);$new$);
    fixed := replace(fixed, $old$
            EXECUTE format('CREATE TABLE %s AS SELECT * FROM pgcqrs_defs.%I', target, name);
            FOREACH col IN ARRAY key LOOP
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, col);
            END LOOP;
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (%s)', target, name || '_pkey', keylist);$old$, $new$
            EXECUTE format('CREATE TABLE %s AS SELECT * FROM pgcqrs_defs.%I', target, name);
            -- a key holding a NULL already: the key keys_may_be_null gives
            -- at the first NULL met
            EXECUTE format('SELECT count(*) FROM (SELECT FROM %s WHERE %s LIMIT 1) x', target,
                           (SELECT string_agg(format('%I IS NULL', k), ' OR ') FROM unnest(key) k)) INTO n;
            IF n > 0 THEN
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE NULLS NOT DISTINCT (%s)',
                               target, name || '_pkey', keylist);
            ELSE
                FOREACH col IN ARRAY key LOOP
                    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, col);
                END LOOP;
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (%s)', target, name || '_pkey', keylist);
            END IF;$new$);
    fixed := replace(fixed, $old$
    IF kept = 'full' THEN
        -- key columns of a materialized view cannot be declared NOT NULL
        EXECUTE format('SELECT count(*) FROM %s WHERE (%s) IS NOT NULL IS NOT TRUE', target,
                       (SELECT string_agg(format('%I IS NOT NULL', k), ' AND ') FROM unnest(key) k)) INTO n;
        IF n > 0 THEN
            RAISE EXCEPTION 'the key (%) of read model % is NULL in % rows', array_to_string(key, ', '), name, n
                USING ERRCODE = 'not_null_violation',
                      HINT = 'Key columns must never be NULL: filter those rows out or coalesce the column.';
        END IF;
    END IF;$old$, '');
    fixed := replace(fixed, $old$
        WHEN not_null_violation THEN
            RAISE EXCEPTION 'the key (%) of read model % is NULL in some rows', array_to_string(key, ', '), name
                USING ERRCODE = 'not_null_violation',
                      HINT = 'Key columns must never be NULL: filter those rows out or coalesce the column.';$old$, '');
    IF strpos(fixed, 'SET NOT NULL') = 0 OR strpos(fixed, 'must never be NULL') > 0
       OR strpos(fixed, ') NULLS NOT DISTINCT'', name') = 0 OR strpos(fixed, 'UNIQUE NULLS NOT DISTINCT') = 0 THEN
        RAISE EXCEPTION 'pgcqrs.define_read_model does not make its key as expected';
    END IF;
    EXECUTE format($f$CREATE OR REPLACE FUNCTION pgcqrs.define_read_model(
        name text, query text, key text[], mode text DEFAULT 'auto', schedule text DEFAULT NULL,
        filterable text[] DEFAULT '{}', description text DEFAULT NULL) RETURNS void
        LANGUAGE plpgsql AS %L$f$, fixed);
END
$patch$;
-- (CREATE OR REPLACE resets a function's settings: V21's again)
ALTER FUNCTION pgcqrs.define_read_model(text, text, text[], text, text, text[], text)
    SET client_min_messages = warning;
