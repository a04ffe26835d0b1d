-- Read models declared in SQL.
--
-- A read model is a row of pgcqrs.read_models, made by
-- pgcqrs.define_read_model(name, query, key, mode, schedule, filterable,
-- description) and removed by pgcqrs.drop_read_model(name). See
-- docs/decisions/0002-declared-read-models.md.

CREATE TABLE pgcqrs.read_models (
    -- The relation read.<name>.
    name        text        NOT NULL CONSTRAINT read_models_pkey PRIMARY KEY
                            CONSTRAINT read_models_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    -- The SELECT as declared.
    query       text        NOT NULL,
    -- Columns of the query that identify a row (a unique index).
    key         text[]      NOT NULL,
    -- full, incremental or auto, as declared.
    mode        text        NOT NULL DEFAULT 'auto'
                            CONSTRAINT read_models_mode_check CHECK (mode IN ('full', 'incremental', 'auto')),
    -- Cron with seconds; NULL: as soon as a source changes.
    schedule    text,
    -- Columns GET /queries/views/{name} may filter and order on.
    filterable  text[]      NOT NULL DEFAULT '{}',
    description text,
    defined_at  timestamptz NOT NULL DEFAULT now(),
    defined_by  text        NOT NULL DEFAULT current_user
);

COMMENT ON TABLE pgcqrs.read_models IS 'Declared read models: each is kept fresh as read.<name> by the refresher. Change with pgcqrs.define_read_model and pgcqrs.drop_read_model.';
COMMENT ON COLUMN pgcqrs.read_models.name IS 'The read model: the relation read.<name>.';
COMMENT ON COLUMN pgcqrs.read_models.query IS 'The SELECT that defines the rows, as declared.';
COMMENT ON COLUMN pgcqrs.read_models.key IS 'Columns that identify a row (a unique index on read.<name>).';
COMMENT ON COLUMN pgcqrs.read_models.mode IS 'full (recomputed whole), incremental (changed keys re-projected) or auto.';
COMMENT ON COLUMN pgcqrs.read_models.schedule IS 'Cron schedule with seconds; empty: refreshed as soon as a source changes.';
COMMENT ON COLUMN pgcqrs.read_models.filterable IS 'Columns the HTTP API may filter and order on.';
COMMENT ON COLUMN pgcqrs.read_models.description IS 'What the read model is, for people.';

GRANT SELECT ON pgcqrs.read_models TO pgcqrs_reader;

-- What pgcqrs derived from a declaration (set by define_read_model).
ALTER TABLE pgcqrs.read_models
    -- incremental (a table kept in batches) or full (a materialized view):
    -- what mode 'auto' resolved to, and why.
    ADD COLUMN kept        text NOT NULL DEFAULT 'full'
                           CONSTRAINT read_models_kept_check CHECK (kept IN ('full', 'incremental')),
    ADD COLUMN kept_reason text,
    -- The tables it reads (views are followed to their tables).
    ADD COLUMN sources     regclass[] NOT NULL DEFAULT '{}',
    -- Per-refresh statement timeout.
    ADD COLUMN timeout_ms  integer NOT NULL DEFAULT 120000,
    -- Recompute every row and write those that differ (an incremental
    -- model's resynchronisation and cost fallback).
    ADD COLUMN full_sql    text,
    -- Re-project the keys a batch's changes touch (pgcqrs.batch_keys).
    ADD COLUMN apply_sql   text;

COMMENT ON COLUMN pgcqrs.read_models.kept IS 'How the model is kept: incremental (a table, changed keys re-projected in batches) or full (a materialized view refreshed whole).';
COMMENT ON COLUMN pgcqrs.read_models.kept_reason IS 'Why a model declared auto is kept this way.';
COMMENT ON COLUMN pgcqrs.read_models.sources IS 'The tables the query reads, found from the query; their changes are captured.';
COMMENT ON COLUMN pgcqrs.read_models.timeout_ms IS 'Statement timeout of one refresh or batch.';
COMMENT ON COLUMN pgcqrs.read_models.full_sql IS 'Generated: recompute the model whole, writing only the rows that differ.';
COMMENT ON COLUMN pgcqrs.read_models.apply_sql IS 'Generated: re-project the keys a batch touched, writing only the rows that differ.';

-- For an incrementally kept model: per table it reads, how a batch of
-- that table's changes is applied.
CREATE TABLE pgcqrs.read_model_sources (
    model       text     NOT NULL REFERENCES pgcqrs.read_models (name) ON DELETE CASCADE,
    source      regclass NOT NULL,
    -- The source's primary key and the columns the query reads of it.
    key         text[]   NOT NULL,
    columns     text[]   NOT NULL,
    -- Where the source's stand-in (its changed rows) lives: a schema put
    -- first on the search path while the model's keys are found.
    delta_schema text    NOT NULL,
    search_path text     NOT NULL,
    -- Generated: add to pgcqrs.batch_keys the model keys the batch's
    -- changes of this source touch.
    keys_sql    text     NOT NULL,
    CONSTRAINT read_model_sources_pkey PRIMARY KEY (model, source)
);

COMMENT ON TABLE pgcqrs.read_model_sources IS 'For each incrementally kept read model, the tables it reads and how their changes are applied.';

-- ------------------------------------------------------------ change capture
-- Every source table has statement-level triggers (transition tables) that
-- append one row per changed row: its key, and for an update or delete its
-- old row. Rows are only appended (no shared row is written), tagged with
-- the writing transaction's id, whoever wrote it: a token from psql is as
-- exact as a command's. The triggers are ENABLE ALWAYS, so bulk loads with
-- session_replication_role = replica and logical replication are captured.
CREATE TABLE pgcqrs.changes (
    txid  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq   bigint      GENERATED ALWAYS AS IDENTITY,
    relid oid         NOT NULL,
    -- I insert, U update, D delete, T truncate (every row)
    op    "char"      NOT NULL,
    -- The row's primary key as a JSON array (NULL: the table has none, or T)
    key   jsonb,
    -- The row before an update or delete
    old   jsonb,
    at    timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT changes_pkey PRIMARY KEY (txid, seq)
);

COMMENT ON TABLE pgcqrs.changes IS 'Captured changes of every table a read model reads, until every model reading it has applied them.';

-- A batch's slice of changes, visible only inside the batch's transaction
-- (rows are inserted and deleted before it commits).
CREATE UNLOGGED TABLE pgcqrs.batch (
    relid oid    NOT NULL,
    op    "char" NOT NULL,
    key   jsonb,
    old   jsonb
) WITH (autovacuum_enabled = true);

COMMENT ON TABLE pgcqrs.batch IS 'Working table of a batch; always empty outside one.';

-- The model keys a batch's changes touch, each as a JSON array.
CREATE UNLOGGED TABLE pgcqrs.batch_keys (
    key jsonb NOT NULL
);

COMMENT ON TABLE pgcqrs.batch_keys IS 'Working table of a batch; always empty outside one.';

-- Definitions: pgcqrs_defs.<name> is the declared query as a view; the
-- model equals it after every refresh.
CREATE SCHEMA pgcqrs_defs;
COMMENT ON SCHEMA pgcqrs_defs IS 'Each read model''s query as a view: read.<name> equals pgcqrs_defs.<name> once refreshed.';

-- Quote a list of identifiers: "a", "b".
CREATE FUNCTION pgcqrs.ident_list(names text[], prefix text DEFAULT '') RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(string_agg(prefix || quote_ident(n), ', ' ORDER BY i), '')
    FROM unnest(names) WITH ORDINALITY AS u(n, i)
$$;

-- Install (once per table) the capture triggers.
CREATE FUNCTION pgcqrs.capture(source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    pk    text[];
    fname text := (SELECT format('capture_%s', left(md5(n.nspname || '.' || c.relname), 20))
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source);
    keyx  text;
    keyo  text;
    same  text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = source AND tgname = 'pgcqrs_capture_insert') THEN
        RETURN;
    END IF;
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
        keyx := format('jsonb_build_array(%s)', pgcqrs.ident_list(pk, 'n.'));
        keyo := format('jsonb_build_array(%s)', pgcqrs.ident_list(pk, 'o.'));
        same := format('(%s) = (%s)', pgcqrs.ident_list(pk, 'n.'), pgcqrs.ident_list(pk, 'o.'));
    END IF;
    EXECUTE format($f$
        CREATE FUNCTION pgcqrs.%1$I() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', %3$s FROM pgcqrs_new n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', %3$s, to_jsonb(o)
                  FROM pgcqrs_new n JOIN pgcqrs_old o ON %5$s
                 WHERE to_jsonb(n) IS DISTINCT FROM to_jsonb(o)
                UNION ALL
                SELECT TG_RELID, 'D', %4$s, to_jsonb(o)
                  FROM pgcqrs_old o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new n WHERE %5$s)
                UNION ALL
                SELECT TG_RELID, 'I', %3$s, NULL
                  FROM pgcqrs_new n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old o WHERE %5$s);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', %4$s, to_jsonb(o) FROM pgcqrs_old o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $body$ $f$, fname, source::oid, keyx, keyo, same);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_insert, ENABLE ALWAYS TRIGGER pgcqrs_capture_update', source);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_delete', source);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate', source);
END
$fn$;

-- Remove the capture triggers of a table no model reads any more.
CREATE FUNCTION pgcqrs.uncapture(source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    fn regprocedure;
BEGIN
    IF EXISTS (SELECT 1 FROM pgcqrs.read_models WHERE source = ANY(sources)) THEN
        RETURN;
    END IF;
    FOR fn IN SELECT t.tgfoid::regprocedure FROM pg_trigger t
               WHERE t.tgrelid = source AND t.tgname = 'pgcqrs_capture_insert' LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', fn);
    END LOOP;
    DELETE FROM pgcqrs.changes WHERE relid = source::oid;
END
$fn$;

-- ------------------------------------------------------------- declaration
CREATE FUNCTION pgcqrs.define_read_model(
    name        text,
    query       text,
    key         text[],
    mode        text    DEFAULT 'auto',
    schedule    text    DEFAULT NULL,
    filterable  text[]  DEFAULT '{}',
    description text    DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    def        regclass;
    target     text;
    cols       text[];
    col        text;
    direct     regclass[];
    tables     regclass[];
    src        regclass;
    kept       text;
    why        text;
    plan       jsonb;
    schemas    text[];
    path       text;
    definition text;
    taken      pg_snapshot;
    n          int := 0;
    updates    text;
    on_conflict text;
    keyeq      text;
    keylist    text;
    old_path   text := current_setting('search_path');
BEGIN
    -- The name.
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,47}$' THEN
        RAISE EXCEPTION 'invalid read model name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_name',
                  HINT = 'Use lower-case letters, digits and underscores, starting with a letter, at most 48 characters.';
    END IF;
    IF EXISTS (SELECT 1 FROM pgcqrs.read_models m WHERE m.name = define_read_model.name) THEN
        RAISE EXCEPTION 'read model % is already defined', name
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Drop it first: SELECT pgcqrs.drop_read_model(%L);', name);
    END IF;
    IF to_regclass(format('read.%I', name)) IS NOT NULL THEN
        RAISE EXCEPTION 'relation read.% already exists and is not a declared read model', name
            USING ERRCODE = 'duplicate_table', HINT = 'Choose another name.';
    END IF;
    IF mode IS NULL OR mode NOT IN ('full', 'incremental', 'auto') THEN
        RAISE EXCEPTION 'invalid mode %', coalesce(quote_literal(mode), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'mode is full, incremental or auto.';
    END IF;
    IF key IS NULL OR cardinality(key) = 0 THEN
        RAISE EXCEPTION 'read model % needs a key', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the columns that identify a row, e.g. ARRAY[''id''].';
    END IF;
    IF schedule IS NOT NULL AND cardinality(regexp_split_to_array(trim(schedule), '\s+')) NOT IN (6, 7) THEN
        RAISE EXCEPTION 'invalid schedule %', quote_literal(schedule)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A cron schedule with seconds: sec min hour day month weekday, e.g. ''*/5 * * * * *''; NULL refreshes as soon as a source changes.';
    END IF;

    -- The query: one SELECT that writes nothing. Run first in a read-only
    -- subtransaction, always rolled back: a second statement smuggled in
    -- after a semicolon, or a data-modifying WITH, fails there and never
    -- runs (the whole string is parsed before any of it runs).
    BEGIN
        PERFORM set_config('transaction_read_only', 'on', true);
        EXECUTE format('SELECT 1 FROM (%s) AS q LIMIT 0', query);
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'pgcqrs: query checked';
    EXCEPTION WHEN OTHERS THEN
        IF SQLERRM <> 'pgcqrs: query checked' THEN
            RAISE EXCEPTION 'the query of read model % is not valid: %', name, SQLERRM
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The query is one SELECT (no semicolon, no data-modifying WITH) over tables and views of this database, with schema-qualified names.';
        END IF;
    END;
    -- It must plan as a view.
    BEGIN
        EXECUTE format('CREATE VIEW pgcqrs_defs.%I AS %s', name, query);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'the query of read model % is not valid: %', name, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The query is one SELECT (no semicolon) over tables and views of this database, with schema-qualified names.';
    END;
    def := format('pgcqrs_defs.%I', name)::regclass;
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO cols
      FROM pg_attribute a WHERE a.attrelid = def AND a.attnum > 0 AND NOT a.attisdropped;
    FOREACH col IN ARRAY key LOOP
        IF NOT col = ANY(cols) THEN
            RAISE EXCEPTION 'key column % is not a column of the query', quote_ident(col)
                USING ERRCODE = 'undefined_column', HINT = format('The query''s columns: %s.', array_to_string(cols, ', '));
        END IF;
    END LOOP;
    FOREACH col IN ARRAY coalesce(filterable, '{}') LOOP
        IF NOT col = ANY(cols) THEN
            RAISE EXCEPTION 'filterable column % is not a column of the query', quote_ident(col)
                USING ERRCODE = 'undefined_column', HINT = format('The query''s columns: %s.', array_to_string(cols, ', '));
        END IF;
    END LOOP;

    -- Its sources: what the view depends on, views followed to tables.
    WITH RECURSIVE deps(rel, via_view) AS (
        SELECT DISTINCT d.refobjid::regclass, false
          FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         WHERE r.ev_class = def AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> def
        UNION
        SELECT DISTINCT d.refobjid::regclass, true
          FROM deps JOIN pg_class c ON c.oid = deps.rel AND c.relkind = 'v'
          JOIN pg_rewrite r ON r.ev_class = c.oid
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid
    )
    SELECT array_agg(DISTINCT rel) FILTER (WHERE NOT via_view),
           array_agg(DISTINCT rel) FILTER (WHERE c.relkind IN ('r', 'p'))
      INTO direct, tables
      FROM deps JOIN pg_class c ON c.oid = deps.rel;
    FOR src IN
        SELECT d.rel FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel
         WHERE c.relkind NOT IN ('r', 'p', 'v')
    LOOP
        RAISE EXCEPTION 'read model % reads %, whose changes cannot be captured', name, src
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Read tables or views over tables; not materialized views, foreign tables or sequences.';
    END LOOP;
    IF tables IS NULL THEN
        RAISE EXCEPTION 'the query of read model % reads no table', name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A read model is kept fresh from the tables it reads.';
    END IF;

    -- How it can be kept: incremental when every relation it reads is a
    -- table with a primary key, read once, and the rows are not aggregates
    -- (those are recomputed whole until aggregates are kept by delta).
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM pgcqrs_defs.%I', name) INTO plan;
    IF EXISTS (SELECT 1 FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel WHERE c.relkind = 'v') THEN
        why := 'it reads a view';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel)
                   WHERE NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = d.rel AND x.indisprimary)) THEN
        why := 'a table it reads has no primary key';
    ELSIF jsonb_path_exists(plan, 'strict $.**."Node Type" ? (@ == "Aggregate" || @ == "WindowAgg" || @ == "SetOp" || @ == "Unique" || @ == "Limit" || @ == "Recursive Union")') THEN
        why := 'its rows are aggregates';
    END IF;
    -- a table read twice (a self-join) cannot be stood in for by its changes
    IF why IS NULL AND EXISTS (
        SELECT r FROM jsonb_path_query(plan, 'strict $.**."Relation Name"') r
        GROUP BY r HAVING count(*) > 1) THEN
        why := 'it reads a table more than once';
    END IF;
    IF mode = 'full' THEN
        kept := 'full';
        why := 'declared full';
    ELSIF why IS NULL THEN
        kept := 'incremental';
        why := CASE mode WHEN 'auto' THEN 'keyed rows: changed keys are re-projected' ELSE 'declared incremental' END;
    ELSIF mode = 'incremental' AND why IN ('its rows are aggregates', 'it reads a table more than once') THEN
        -- Aggregates: the groups a change touches are recomputed. A table
        -- read more than once is stood in for by its changed rows at every
        -- read at once: right when each read is tied to the same key (such
        -- as a count and an EXISTS over an order's lines), which auto
        -- cannot tell, so only an explicit declaration gets it.
        kept := 'incremental';
        why := 'declared incremental; ' || why;
    ELSIF mode = 'incremental' THEN
        RAISE EXCEPTION 'read model % cannot be kept incrementally: %', name, why
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Declare it with mode => ''full'' (or ''auto''), or read the tables directly, each once, each with a primary key.';
    ELSE
        kept := 'full';
        why := 'auto: ' || why;
    END IF;

    -- Capture changes of every table first, then take the snapshot the
    -- fill covers: every write after it is captured.
    FOREACH src IN ARRAY tables LOOP
        PERFORM pgcqrs.capture(src);
    END LOOP;
    taken := pg_current_snapshot();
    target := format('read.%I', name);
    keylist := pgcqrs.ident_list(key);
    BEGIN
        IF kept = 'full' THEN
            EXECUTE format('CREATE MATERIALIZED VIEW %s AS SELECT * FROM pgcqrs_defs.%I', target, name);
            EXECUTE format('CREATE UNIQUE INDEX %I ON %s (%s)', name || '_pkey', target, keylist);
        ELSE
            EXECUTE format('CREATE TABLE %s AS SELECT * FROM pgcqrs_defs.%I', target, name);
            FOREACH col IN ARRAY key LOOP
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, col);
            END LOOP;
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (%s)', target, name || '_pkey', keylist);
        END IF;
    EXCEPTION
        WHEN unique_violation THEN
            RAISE EXCEPTION 'the key (%) of read model % is not unique: %', array_to_string(key, ', '), name, SQLERRM
                USING ERRCODE = 'unique_violation',
                      HINT = 'The key must identify one row of the query: add columns to it, or group by it.';
        WHEN not_null_violation THEN
            RAISE EXCEPTION 'the key (%) of read model % is NULL in some rows', array_to_string(key, ', '), name
                USING ERRCODE = 'not_null_violation',
                      HINT = 'Key columns must never be NULL: filter those rows out or coalesce the column.';
    END;
    IF kept = 'full' THEN
        -- key columns of a materialized view cannot be declared NOT NULL
        EXECUTE format('SELECT count(*) FROM %s WHERE (%s) IS NOT NULL IS NOT TRUE', target,
                       (SELECT string_agg(format('%I IS NOT NULL', k), ' AND ') FROM unnest(key) k)) INTO n;
        IF n > 0 THEN
            RAISE EXCEPTION 'the key (%) of read model % is NULL in % rows', array_to_string(key, ', '), name, n
                USING ERRCODE = 'not_null_violation',
                      HINT = 'Key columns must never be NULL: filter those rows out or coalesce the column.';
        END IF;
    END IF;
    EXECUTE format('COMMENT ON %s %s IS %L',
                   CASE kept WHEN 'full' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, target,
                   coalesce(description, format('Read model %s, declared in pgcqrs.read_models.', name)));
    EXECUTE format('GRANT SELECT ON %s TO pgcqrs_reader', target);

    -- Recompute whole, writing only the rows that differ.
    keyeq := (SELECT string_agg(format('v.%1$I = t.%1$I', k), ' AND ') FROM unnest(key) k);
    updates := (SELECT string_agg(format('%1$I = EXCLUDED.%1$I', c), ', ')
                  FROM unnest(cols) c WHERE NOT c = ANY(key));
    -- rows that would not change are not rewritten
    on_conflict := CASE WHEN updates IS NULL THEN 'NOTHING'
                        ELSE format('UPDATE SET %s WHERE t::text IS DISTINCT FROM EXCLUDED::text', updates) END;
    INSERT INTO pgcqrs.read_models (name, query, key, mode, schedule, filterable, description,
                                    kept, kept_reason, sources, full_sql)
    VALUES (name, query, key, mode, nullif(trim(schedule), ''), coalesce(filterable, '{}'), description,
            kept, why, tables,
            CASE WHEN kept = 'incremental' THEN format($q$
WITH upserted AS (
    INSERT INTO %1$s AS t SELECT * FROM pgcqrs_defs.%2$I
    ON CONFLICT (%3$s) DO %4$s
    RETURNING 1
),
removed AS (
    DELETE FROM %1$s t WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_defs.%2$I v WHERE %5$s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows$q$,
                target, name, keylist,
                on_conflict,
                keyeq) END);

    -- Per table read: its stand-in and the statement that applies its changes.
    IF kept = 'incremental' THEN
        SELECT array_agg(DISTINCT n.nspname::text) INTO schemas
          FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel JOIN pg_namespace n ON n.oid = c.relnamespace;
        path := pgcqrs.ident_list(schemas);
        PERFORM set_config('search_path', path, true);
        definition := pg_get_viewdef(def);
        PERFORM set_config('search_path', old_path, true);
        n := 0;
        FOREACH src IN ARRAY direct LOOP
            n := n + 1;
            PERFORM pgcqrs.stand_in(name, src, n, path, definition, key);
        END LOOP;
        -- The touched keys, each recomputed on its own (OFFSET 0 keeps the
        -- lookup per key, so a grouped query computes just that group,
        -- through its indexes); rows that did not change are not rewritten.
        UPDATE pgcqrs.read_models m SET apply_sql = format($q$
WITH k AS MATERIALIZED (
    SELECT DISTINCT %1$s FROM pgcqrs.batch_keys
),
fresh AS MATERIALIZED (
    SELECT v.* FROM k CROSS JOIN LATERAL (
        SELECT * FROM pgcqrs_defs.%2$I v WHERE %3$s OFFSET 0) v
),
upserted AS (
    INSERT INTO %4$s AS t
    SELECT * FROM fresh
    ON CONFLICT (%5$s) DO %6$s
    RETURNING 1
),
removed AS (
    DELETE FROM %4$s t
     WHERE (%7$s) IN (SELECT * FROM k)
       AND NOT EXISTS (SELECT 1 FROM fresh v WHERE %8$s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM k) AS keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows$q$,
            (SELECT string_agg(format('(key ->> %s)::%s AS %I', x.i - 1, format_type(a.atttypid, a.atttypmod), x.k), ', ' ORDER BY x.i)
               FROM unnest(define_read_model.key) WITH ORDINALITY AS x(k, i)
               JOIN pg_attribute a ON a.attrelid = def AND a.attname = x.k),
            define_read_model.name,
            (SELECT string_agg(format('v.%1$I = k.%1$I', x), ' AND ') FROM unnest(define_read_model.key) x),
            target,
            keylist,
            on_conflict,
            pgcqrs.ident_list(define_read_model.key, 't.'),
            keyeq)
        WHERE m.name = define_read_model.name;
    END IF;

    INSERT INTO read.read_model_status (view_name, current_as_of, verified_at, cluster_id, backlog)
    VALUES (name, taken, now(), pgcqrs.cluster_id(), 0);
    PERFORM pg_notify('pgcqrs_read_models', name);
END
$fn$;

-- The stand-in of one table an incremental model reads: a view of the same
-- name, in a schema of its own, holding just the rows the batch changed
-- (as they are now, and as they were) whose change touches a column the
-- query reads. Put first on the search path, it turns the query into "the
-- rows this batch's changes touch"; their keys are re-projected.
CREATE FUNCTION pgcqrs.stand_in(model text, source regclass, n int, path text, definition text,
                                key text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    schema  text := format('pgcqrs_d%s_%s', n, model);
    relname text;
    pk      text[];
    pktypes text[];
    used    text[];
    same    text;
    pkjoin  text;
    pkeq    text;
BEGIN
    SELECT c.relname INTO relname FROM pg_class c WHERE c.oid = source;
    SELECT array_agg(a.attname::text ORDER BY k.i), array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.i)
      INTO pk, pktypes
      FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
     WHERE x.indrelid = source AND x.indisprimary;
    -- the columns the query reads of it
    SELECT array_agg(DISTINCT a.attname::text) INTO used
      FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
     WHERE r.ev_class = format('pgcqrs_defs.%I', model)::regclass
       AND d.refobjid = source AND d.refobjsubid > 0;
    same := coalesce((SELECT string_agg(format('(b.old -> %1$L) IS NOT DISTINCT FROM to_jsonb(t.%1$I)', u), ' AND ')
                        FROM unnest(used) u), 'true');
    pkjoin := (SELECT string_agg(format('t.%I = (b.key ->> %s)::%s', p, i - 1, pktypes[i]), ' AND ')
                 FROM unnest(pk) WITH ORDINALITY AS x(p, i));
    pkeq := (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(pk) p);

    EXECUTE format('CREATE SCHEMA %I', schema);
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', schema,
                   format('pgcqrs: stand-in for %s while a batch of read model %s finds its keys.', source, model));
    EXECUTE format($v$
        CREATE VIEW %1$I.%2$I AS
        SELECT t.* FROM pgcqrs.batch b JOIN %3$s t ON %4$s
         WHERE b.relid = %5$s AND b.op IN ('I', 'U') AND (b.old IS NULL OR NOT (%6$s))
        UNION ALL
        SELECT r.* FROM pgcqrs.batch b CROSS JOIN LATERAL jsonb_populate_record(NULL::%3$s, b.old) r
         WHERE b.relid = %5$s AND b.old IS NOT NULL
           AND (b.op = 'D' OR NOT EXISTS (SELECT 1 FROM %3$s t WHERE %7$s AND %8$s))$v$,
        schema, relname, source, pkjoin, format('%L::regclass', source::text), same, pkeq,
        replace(same, 'b.old -> ', 'to_jsonb(r) -> '));

    INSERT INTO pgcqrs.read_model_sources (model, source, key, columns, delta_schema, search_path, keys_sql)
    VALUES (model, source, pk, coalesce(used, '{}'), schema, format('%I, %s', schema, path), format($q$
INSERT INTO pgcqrs.batch_keys (key)
SELECT DISTINCT jsonb_build_array(%1$s) FROM (%2$s) q$q$,
        pgcqrs.ident_list(key, 'q.'),
        regexp_replace(definition, ';\s*$', '')));
END
$fn$;

CREATE FUNCTION pgcqrs.drop_read_model(name text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    m   pgcqrs.read_models;
    s   text;
    src regclass;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = drop_read_model.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'read model % is not defined', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM pgcqrs.read_models lists the defined ones.';
    END IF;
    FOR s IN SELECT delta_schema FROM pgcqrs.read_model_sources WHERE model = m.name LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', s);
    END LOOP;
    DELETE FROM pgcqrs.read_models r WHERE r.name = m.name;
    EXECUTE format('DROP %s read.%I', CASE m.kept WHEN 'full' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, m.name);
    EXECUTE format('DROP VIEW pgcqrs_defs.%I', m.name);
    DELETE FROM read.read_model_status WHERE view_name = m.name;
    FOREACH src IN ARRAY m.sources LOOP
        PERFORM pgcqrs.uncapture(src);
    END LOOP;
    PERFORM pg_notify('pgcqrs_read_models', m.name);
END
$fn$;

COMMENT ON FUNCTION pgcqrs.define_read_model(text, text, text[], text, text, text[], text) IS
    'Declare a read model: read.<name> kept fresh from query, identified by key. See pgcqrs.read_models.';
COMMENT ON FUNCTION pgcqrs.drop_read_model(text) IS 'Remove a declared read model and its relation read.<name>.';

-- Only the schema owner declares: not the reader, not the writer.
REVOKE EXECUTE ON FUNCTION pgcqrs.define_read_model(text, text, text[], text, text, text[], text),
                           pgcqrs.drop_read_model(text), pgcqrs.capture(regclass), pgcqrs.uncapture(regclass),
                           pgcqrs.stand_in(text, regclass, int, text, text, text[])
    FROM PUBLIC;

-- ---------------------------------------------------- the built-in models
-- A day's orders, for recomputing the daily_sales groups a batch touches
-- (created_at never changes, so updates stay HOT).
CREATE INDEX orders_created_day_idx ON write.orders (((created_at AT TIME ZONE 'UTC')::date));

-- Declared like any team's. They replace the hand-wired tables and views of
-- V4 to V7, and change capture replaces write.catalog_changes.
DROP MATERIALIZED VIEW read.customer_orders, read.daily_sales, read.product_sales;
DROP TABLE read.order_summary, read.order_lines;
DROP VIEW write.order_summary_projection, write.order_lines_projection;
DELETE FROM read.read_model_status
 WHERE view_name IN ('order_summary', 'order_lines', 'customer_orders', 'daily_sales', 'product_sales');
DROP TABLE write.catalog_changes;
DROP FUNCTION write.record_catalog_change() CASCADE;

-- One row per order. Only orders with lines (every order the service
-- takes has one): the EXISTS lets a batch of line changes find its orders
-- from the lines, and the LATERAL count lets a batch of order changes
-- count just their lines.
SELECT pgcqrs.define_read_model(
    name        => 'order_summary',
    query       => $q$
SELECT o.id::text                  AS order_id,
       o.customer_id::text         AS customer_id,
       c.name                      AS customer_name,
       c.email                     AS customer_email,
       i.item_count                AS item_count,
       o.total::numeric(14, 2)     AS total,
       o.status,
       CASE o.status
           WHEN 'pending'   THEN 'Pending'
           WHEN 'confirmed' THEN 'Confirmed'
           WHEN 'shipped'   THEN 'Shipped'
           WHEN 'delivered' THEN 'Delivered'
           WHEN 'cancelled' THEN 'Cancelled'
       END                         AS status_display,
       o.cancel_reason,
       o.version,
       o.created_at,
       o.updated_at
FROM write.orders o
JOIN write.customers c ON c.id = o.customer_id
CROSS JOIN LATERAL (SELECT count(*)::integer AS item_count
                    FROM write.order_items it
                    WHERE it.order_id = o.id) i
WHERE EXISTS (SELECT 1 FROM write.order_items x WHERE x.order_id = o.id)
$q$,
    key         => ARRAY['order_id'],
    mode        => 'incremental',
    schedule    => '* * * * * *',
    filterable  => ARRAY['order_id', 'customer_id', 'status', 'created_at', 'total'],
    description => 'One row per order, with its customer and totals: what an order page or list shows. Kept current in small batches by the refresher.');

CREATE INDEX order_summary_customer_idx ON read.order_summary (customer_id, created_at DESC, order_id DESC);
CREATE INDEX order_summary_created_idx ON read.order_summary (created_at DESC, order_id DESC);
CREATE INDEX order_summary_status_idx ON read.order_summary (status, created_at DESC, order_id DESC);
CREATE INDEX order_summary_created_cover_idx ON read.order_summary (created_at) INCLUDE (status, total);

SELECT pgcqrs.define_read_model(
    name        => 'order_lines',
    query       => $q$
SELECT i.order_id::text                            AS order_id,
       i.line_no,
       i.product_id::text                          AS product_id,
       p.name                                      AS product_name,
       i.quantity,
       i.unit_price::numeric(14, 2)                AS unit_price,
       (i.quantity * i.unit_price)::numeric(16, 2) AS subtotal
FROM write.order_items i
JOIN write.products p ON p.id = i.product_id
$q$,
    key         => ARRAY['order_id', 'line_no'],
    mode        => 'incremental',
    schedule    => '* * * * * *',
    filterable  => ARRAY['order_id', 'product_id'],
    description => 'One row per order line, with the product''s name and the line subtotal. Kept current in small batches by the refresher.');

CREATE INDEX order_lines_product_idx ON read.order_lines (product_id);

SELECT pgcqrs.define_read_model(
    name        => 'customer_orders',
    query       => $q$
SELECT c.id::text                                    AS customer_id,
       c.name                                        AS customer_name,
       c.email                                       AS customer_email,
       count(o.id)                                   AS order_count,
       count(o.id) FILTER (WHERE o.status <> 'cancelled') AS active_order_count,
       coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0.00)::numeric AS lifetime_value,
       max(o.created_at)                             AS last_order_at
FROM write.customers c
LEFT JOIN write.orders o ON o.customer_id = c.id
GROUP BY c.id, c.name, c.email
$q$,
    key         => ARRAY['customer_id'],
    schedule    => '*/5 * * * * *',
    filterable  => ARRAY['customer_id', 'order_count', 'lifetime_value', 'last_order_at'],
    description => 'One row per customer: how many orders, what they are worth, when the last was placed.');

SELECT pgcqrs.define_read_model(
    name        => 'daily_sales',
    query       => $q$
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day,
       o.status,
       count(*)                                AS orders,
       sum(o.total)::numeric                   AS revenue
FROM write.orders o
GROUP BY 1, 2
$q$,
    key         => ARRAY['day', 'status'],
    mode        => 'incremental',
    schedule    => '*/2 * * * * *',
    filterable  => ARRAY['day', 'status'],
    description => 'Orders and revenue per UTC day of placement and current status: what the statistics query reads.');

SELECT pgcqrs.define_read_model(
    name        => 'product_sales',
    query       => $q$
SELECT p.id::text                                  AS product_id,
       p.name                                      AS product_name,
       p.price::numeric(14, 2)                     AS current_price,
       count(DISTINCT i.order_id) FILTER (WHERE o.status <> 'cancelled') AS orders,
       coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0)::bigint AS units,
       coalesce(sum(i.quantity * i.unit_price) FILTER (WHERE o.status <> 'cancelled'), 0.00)::numeric AS revenue
FROM write.products p
LEFT JOIN write.order_items i ON i.product_id = p.id
LEFT JOIN write.orders o ON o.id = i.order_id
GROUP BY p.id, p.name, p.price
$q$,
    key         => ARRAY['product_id'],
    schedule    => '*/10 * * * * *',
    filterable  => ARRAY['product_id', 'units', 'revenue'],
    description => 'One row per product: units sold and revenue, over orders not cancelled.');

-- What each column means, for people in reporting tools.
COMMENT ON COLUMN read.order_summary.order_id IS 'The order''s id.';
COMMENT ON COLUMN read.order_summary.customer_id IS 'The ordering customer''s id.';
COMMENT ON COLUMN read.order_summary.customer_name IS 'The customer''s current name.';
COMMENT ON COLUMN read.order_summary.customer_email IS 'The customer''s current e-mail address.';
COMMENT ON COLUMN read.order_summary.item_count IS 'Number of lines (distinct items) in the order.';
COMMENT ON COLUMN read.order_summary.total IS 'Order total: the sum of quantity × unit price over its lines, exact.';
COMMENT ON COLUMN read.order_summary.status IS 'pending, confirmed, shipped, delivered or cancelled.';
COMMENT ON COLUMN read.order_summary.status_display IS 'The status as a label for people (Pending, Shipped, ...).';
COMMENT ON COLUMN read.order_summary.cancel_reason IS 'Why the order was cancelled; empty unless cancelled.';
COMMENT ON COLUMN read.order_summary.version IS 'The order''s version: 1 when placed, plus one per status change.';
COMMENT ON COLUMN read.order_summary.created_at IS 'When the order was placed (UTC).';
COMMENT ON COLUMN read.order_summary.updated_at IS 'When the order last changed (UTC).';
COMMENT ON COLUMN read.order_lines.order_id IS 'The order the line belongs to.';
COMMENT ON COLUMN read.order_lines.line_no IS 'Position of the line in the order, from 1.';
COMMENT ON COLUMN read.order_lines.product_id IS 'The product ordered.';
COMMENT ON COLUMN read.order_lines.product_name IS 'The product''s current name.';
COMMENT ON COLUMN read.order_lines.quantity IS 'How many were ordered.';
COMMENT ON COLUMN read.order_lines.unit_price IS 'Price of one unit when the order was placed.';
COMMENT ON COLUMN read.order_lines.subtotal IS 'quantity × unit_price, exact.';
COMMENT ON COLUMN read.customer_orders.customer_id IS 'The customer''s id.';
COMMENT ON COLUMN read.customer_orders.customer_name IS 'The customer''s current name.';
COMMENT ON COLUMN read.customer_orders.customer_email IS 'The customer''s current e-mail address.';
COMMENT ON COLUMN read.customer_orders.order_count IS 'Orders ever placed, cancelled ones included.';
COMMENT ON COLUMN read.customer_orders.active_order_count IS 'Orders placed and not cancelled.';
COMMENT ON COLUMN read.customer_orders.lifetime_value IS 'Sum of the totals of orders not cancelled (exact, two decimals, no upper bound).';
COMMENT ON COLUMN read.customer_orders.last_order_at IS 'When the customer last placed an order (UTC); empty if never.';
COMMENT ON COLUMN read.daily_sales.day IS 'The UTC calendar day the orders were placed.';
COMMENT ON COLUMN read.daily_sales.status IS 'The orders'' current status.';
COMMENT ON COLUMN read.daily_sales.orders IS 'Number of orders placed that day now in that status.';
COMMENT ON COLUMN read.daily_sales.revenue IS 'Sum of their totals, whatever the status (exact, two decimals, no upper bound).';
COMMENT ON COLUMN read.product_sales.product_id IS 'The product''s id.';
COMMENT ON COLUMN read.product_sales.product_name IS 'The product''s current name.';
COMMENT ON COLUMN read.product_sales.current_price IS 'The product''s catalog price today.';
COMMENT ON COLUMN read.product_sales.orders IS 'Orders (not cancelled) with at least one line of this product.';
COMMENT ON COLUMN read.product_sales.units IS 'Units sold in orders not cancelled.';
COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid (exact, two decimals, no upper bound).';

-- How each refresh was computed.
ALTER TABLE read.refresh_log ADD COLUMN mode text;
COMMENT ON COLUMN read.refresh_log.mode IS 'incremental (the changed keys re-projected) or full (recomputed whole), as chosen for this refresh.';
