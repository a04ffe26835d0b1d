-- Grouped read models kept in batches.
--
-- A batch re-projects the keys its changes touch, found by running the
-- model's query over the changed rows. That finds every touched key only
-- for queries where a new row can add output rows but never remove one;
-- pgcqrs.incremental_obstacle names what breaks it (negation, LIMIT,
-- window functions, HAVING, conditions a missing row could satisfy under
-- an outer join). Any other query, grouped or not, is kept in batches by
-- auto, the groups a batch touches recomputed. A table on the nullable
-- side of an outer join is joined inner while its changed rows stand in
-- for it, so a batch finds just the groups its rows are in.
-- See docs/decisions/0003-incremental-aggregates.md.

-- Parts of a node tree (the text form of a parsed query, as
-- pg_rewrite.ev_action stores it), each whole, its braces and parentheses
-- balanced: every node of a kind (marker '{AGGREF ', '{COALESCEEXPR ',
-- ...), or with `value`, the value of every field of a name (marker
-- ':quals ') that is a node or a list.
CREATE FUNCTION pgcqrs.node_segments(tree text, marker text, value boolean DEFAULT false) RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    pos   int := 1;
    found int;
    i     int;
    depth int;
    ch    text;
    len   int := length(tree);
BEGIN
    LOOP
        found := strpos(substr(tree, pos), marker);
        EXIT WHEN found = 0;
        pos := pos + found - 1 + CASE WHEN value THEN length(marker) ELSE 0 END;
        IF substr(tree, pos, 1) NOT IN ('{', '(') THEN
            pos := pos + 1;
            CONTINUE;
        END IF;
        i := pos;
        depth := 0;
        LOOP
            ch := substr(tree, i, 1);
            IF ch = '\' THEN
                i := i + 1;
            ELSIF ch IN ('{', '(') THEN
                depth := depth + 1;
            ELSIF ch IN ('}', ')') THEN
                depth := depth - 1;
            END IF;
            i := i + 1;
            EXIT WHEN depth = 0 OR i > len;
        END LOOP;
        RETURN NEXT substr(tree, pos, i - pos);
        pos := pos + 1;
    END LOOP;
END
$fn$;

-- Whether an expression (node text) computes something from a column
-- through a construct a missing (NULL) row changes: coalesce, CASE, a null
-- test, a non-strict function... outside aggregate calls (an aggregate
-- skips the NULLs an outer join adds). A key such as
-- coalesce(o.status, 'none') names another group when an outer join stops
-- adding its missing row, and a batch cannot find that group.
CREATE FUNCTION pgcqrs.nulls_shown(expr text) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT AS $fn$
DECLARE
    agg text;
BEGIN
    FOR agg IN SELECT pgcqrs.node_segments(expr, '{AGGREF ') LOOP
        expr := replace(expr, agg, '');
    END LOOP;
    RETURN EXISTS (
        SELECT 1
          FROM unnest(ARRAY['{COALESCEEXPR ', '{CASEEXPR ', '{NULLIFEXPR ', '{MINMAXEXPR ', '{NULLTEST ',
                            '{BOOLEANTEST ', '{DISTINCTEXPR ', '{BOOLEXPR ', '{SUBLINK ']) m,
               pgcqrs.node_segments(expr, m) seg
         WHERE seg LIKE '%{VAR %')
        OR (expr LIKE '%{VAR %' AND EXISTS (
               SELECT 1 FROM regexp_matches(expr, ':(?:op)?funcid (\d+)', 'g') f
                 JOIN pg_proc p ON p.oid = f[1]::oid WHERE NOT p.proisstrict));
END
$fn$;

-- Why a query cannot be kept by re-projecting the keys its changes touch,
-- or NULL. A batch finds those keys by running the query over the changed
-- rows alone, which finds every key a change touches only when adding a
-- row can add output rows but never take one away, and each output row
-- depends on its own input rows: no negation, no LIMIT, no window, no
-- HAVING (a group's partial rows would be filtered), and, under an outer
-- join, no condition that a missing (NULL) row could satisfy.
CREATE FUNCTION pgcqrs.incremental_obstacle(def regclass) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    tree  text;
    plan  jsonb;
    quals text;
BEGIN
    SELECT r.ev_action::text INTO tree FROM pg_rewrite r WHERE r.ev_class = def;
    IF tree ~ ':hasWindowFuncs true' THEN
        RETURN 'it uses a window function';
    ELSIF tree ~ ':limit(Count|Offset) \{' THEN
        RETURN 'it has LIMIT or OFFSET';
    ELSIF tree ~ ':hasRecursive true' THEN
        RETURN 'it is recursive';
    ELSIF tree ~ ':havingQual \{' THEN
        RETURN 'it filters groups with HAVING';
    ELSIF tree ~ '\{SETOPERATIONSTMT :op 3' THEN
        RETURN 'it uses EXCEPT';
    END IF;
    SELECT string_agg(q, ' ') INTO quals FROM pgcqrs.node_segments(tree, ':quals ', true) q;
    quals := coalesce(quals, '');
    IF quals ~ ':subLinkType [1345678]' OR (quals ~ ':boolop not' AND quals ~ '\{SUBLINK') THEN
        RETURN 'a condition negates or compares with a subquery (NOT EXISTS, NOT IN, ALL, a scalar subquery)';
    END IF;
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM %s', def) INTO plan;
    IF jsonb_path_exists(plan, 'strict $.**."Join Type" ? (@ like_regex "Anti")') THEN
        RETURN 'it keeps rows that have no match (an anti-join)';
    END IF;
    IF tree ~ '\{JOINEXPR :jointype [123]' AND (
           quals ~ '\{(NULLTEST|BOOLEANTEST|COALESCEEXPR|CASEEXPR|NULLIFEXPR|MINMAXEXPR|DISTINCTEXPR|SUBLINK)|:boolop or'
        OR EXISTS (SELECT 1 FROM regexp_matches(quals, ':(?:op)?funcid (\d+)', 'g') m
                     JOIN pg_proc p ON p.oid = m[1]::oid WHERE NOT p.proisstrict)) THEN
        RETURN 'under an outer join, a condition could hold for a missing row (IS NULL, OR, coalesce, CASE, IS DISTINCT FROM)';
    END IF;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION pgcqrs.define_read_model(
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
    -- table with a primary key, and a batch can find every key its changes
    -- touch by running the query over the changed rows (see
    -- pgcqrs.incremental_obstacle). Grouped rows are kept by recomputing
    -- the groups a batch touches.
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM pgcqrs_defs.%I', name) INTO plan;
    IF EXISTS (SELECT 1 FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel WHERE c.relkind = 'v') THEN
        why := 'it reads a view';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel)
                   WHERE NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = d.rel AND x.indisprimary)) THEN
        why := 'a table it reads has no primary key';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel
                   GROUP BY c.relname HAVING count(*) > 1) THEN
        -- a stand-in replaces a table by its name on the search path
        why := 'it reads two tables of the same name';
    ELSE
        why := pgcqrs.incremental_obstacle(def);
    END IF;
    -- under an outer join, a key computed from a missing row
    IF why IS NULL AND EXISTS (
        SELECT 1 FROM pg_rewrite r, pgcqrs.node_segments(r.ev_action::text, '{TARGETENTRY ') te, unnest(key) k
         WHERE r.ev_class = def AND r.ev_action::text ~ '\{JOINEXPR :jointype [123]'
           AND strpos(te, format(':resname %s ', k)) > 0 AND pgcqrs.nulls_shown(te)) THEN
        why := 'under an outer join, a key column is computed from a row that may be missing (coalesce, CASE, ...)';
    END IF;
    -- a table read twice (a self-join) is stood in for by its changed rows
    -- at every read at once
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
        why := CASE WHEN jsonb_path_exists(plan, 'strict $.**."Node Type" ? (@ == "Aggregate" || @ == "Unique" || @ == "SetOp")')
                    THEN 'grouped rows: the groups a change touches are recomputed'
                    ELSE 'keyed rows: changed keys are re-projected' END;
        IF mode = 'incremental' THEN
            why := 'declared incremental; ' || why;
        END IF;
    ELSIF mode = 'incremental' AND why = 'it reads a table more than once' THEN
        -- Right when each read is tied to the same key (such as a count and
        -- an EXISTS over an order's lines), which auto cannot tell, so only
        -- an explicit declaration gets it.
        kept := 'incremental';
        why := 'declared incremental; ' || why;
    ELSIF mode = 'incremental' THEN
        RAISE EXCEPTION 'read model % cannot be kept incrementally: %', name, why
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Declare it with mode => ''full'' (or ''auto''), or read the tables directly, each with a primary key, without negation, LIMIT, window functions or HAVING.';
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

    -- Recompute whole, once, writing only the rows that differ.
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
WITH fresh AS MATERIALIZED (
    SELECT * FROM pgcqrs_defs.%2$I
),
upserted AS (
    INSERT INTO %1$s AS t SELECT * FROM fresh
    ON CONFLICT (%3$s) DO %4$s
    RETURNING 1
),
removed AS (
    DELETE FROM %1$s t WHERE NOT EXISTS (SELECT 1 FROM fresh v WHERE %5$s)
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

CREATE OR REPLACE FUNCTION pgcqrs.stand_in(model text, source regclass, n int, path text, definition text,
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
    tree    text;
    relre   text;
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

-- The built-in aggregates: customer_orders kept in batches, as soon as a
-- source changes, like daily_sales. product_sales stays a materialized
-- view on its 10-second schedule: under steady orders a batch touches most
-- products, and recomputing them one by one (or whole, as a table) cost
-- more than REFRESH ... CONCURRENTLY at 1M orders (decision 0003). It is
-- redeclared for the outer-join and obstacle checks, as full.
SELECT pgcqrs.drop_read_model('customer_orders');
SELECT pgcqrs.drop_read_model('product_sales');

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
    filterable  => ARRAY['customer_id', 'order_count', 'lifetime_value', 'last_order_at'],
    description => 'One row per customer: how many orders, what they are worth, when the last was placed.');

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
    mode        => 'full',
    key         => ARRAY['product_id'],
    schedule    => '*/10 * * * * *',
    filterable  => ARRAY['product_id', 'units', 'revenue'],
    description => 'One row per product: units sold and revenue, over orders not cancelled.');

UPDATE pgcqrs.read_models SET schedule = NULL WHERE name = 'daily_sales';

COMMENT ON COLUMN read.customer_orders.customer_id IS 'The customer''s id.';
COMMENT ON COLUMN read.customer_orders.customer_name IS 'The customer''s current name.';
COMMENT ON COLUMN read.customer_orders.customer_email IS 'The customer''s current e-mail address.';
COMMENT ON COLUMN read.customer_orders.order_count IS 'Orders ever placed, cancelled ones included.';
COMMENT ON COLUMN read.customer_orders.active_order_count IS 'Orders placed and not cancelled.';
COMMENT ON COLUMN read.customer_orders.lifetime_value IS 'Sum of the totals of orders not cancelled (exact, two decimals, no upper bound).';
COMMENT ON COLUMN read.customer_orders.last_order_at IS 'When the customer last placed an order (UTC); empty if never.';
COMMENT ON COLUMN read.product_sales.product_id IS 'The product''s id.';
COMMENT ON COLUMN read.product_sales.product_name IS 'The product''s current name.';
COMMENT ON COLUMN read.product_sales.current_price IS 'The product''s catalog price today.';
COMMENT ON COLUMN read.product_sales.orders IS 'Orders (not cancelled) with at least one line of this product.';
COMMENT ON COLUMN read.product_sales.units IS 'Units sold in orders not cancelled.';
COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid (exact, two decimals, no upper bound).';

REVOKE EXECUTE ON FUNCTION pgcqrs.node_segments(text, text, boolean), pgcqrs.nulls_shown(text),
                           pgcqrs.incremental_obstacle(regclass) FROM PUBLIC;
