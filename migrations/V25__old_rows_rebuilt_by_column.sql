-- Old rows rebuilt from their captured JSON column by column.
--
-- A batch rebuilds the first version of each changed row from the JSON
-- the capture took (the minus part of a model kept by delta, the "as it
-- was" part of a key view), only the columns the query reads and the
-- key. jsonb_to_record did that: it walks the whole object and looks each
-- of its keys up in the record's columns, about 3.7 µs a row for the four
-- columns daily_sales reads of an order. Taking each column out with ->>
-- and casting it to its plain type is the same conversion (the type's
-- input function reads the value's text, as jsonb_to_record's does for a
-- scalar), and PostgreSQL pulls the lateral subquery up into the query:
-- the minus part of a daily_sales batch of 10,000 cancelled orders at 1M
-- orders took 44 ms instead of 69 ms, in alternating runs in one
-- transaction.
--
-- A column of an array or composite type (through domains) is read from a
-- JSON array or object, which only jsonb_to_record reads as such, and a
-- type whose cast from text is a function of its own (regclass: it looks
-- the name up, where the input function also reads '-' and an oid) would
-- not read what the input function reads: a stand-in that needs one keeps
-- jsonb_to_record. ("char", name and xml have such casts, which read what
-- their input functions read.) A json or jsonb column is taken
-- as JSON (->), not as the text of a string, and its null as NULL, as
-- jsonb_to_record takes it (the captured JSON writes SQL's NULL and a JSON
-- null alike).

-- The columns needed of the captured old row old (a JSON expression) of
-- source, as a lateral subquery named r; NULL when one of them is of an
-- array or composite type.
CREATE FUNCTION pgcqrs.rebuilt_from(source regclass, needed text[], old text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN bool_or(y.typtype = 'c' OR (y.typcategory = 'A' AND y.typelem <> 0)
                             -- a cast from text that is a function of
                             -- its own, not the input function: regclass
                             -- looks a name up ('-' and an oid fail)
                             OR EXISTS (SELECT 1 FROM pg_cast c
                                         WHERE c.castsource = 'text'::regtype AND c.casttarget = b
                                           AND c.castmethod = 'f'
                                           AND b NOT IN ('"char"'::regtype, 'name'::regtype, 'xml'::regtype)))
                THEN NULL
                ELSE format('(SELECT %s) AS r',
                            string_agg(CASE WHEN b IN ('jsonb'::regtype, 'json'::regtype)
                                            THEN format('nullif(%s -> %L, ''null'')::%s AS %I', old, a.attname, b, a.attname)
                                            ELSE format('(%s ->> %L)::%s AS %I', old, a.attname,
                                                        pgcqrs.plain_type(source, a.attname), a.attname) END,
                                       ', ' ORDER BY a.attnum)) END
      FROM pg_attribute a
      CROSS JOIN LATERAL pgcqrs.base_type(source, a.attname) b
      JOIN pg_type y ON y.oid = b
     WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY (needed)
$$;
REVOKE EXECUTE ON FUNCTION pgcqrs.rebuilt_from(regclass, text[], text) FROM PUBLIC;

-- V19's delta stand-ins, the minus part rebuilt through rebuilt_from.
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
        SELECT %s FROM %s CROSS JOIN LATERAL %s
         WHERE f.old IS NOT NULL$v$,
                   minus, relname, rebuilt, firsts,
                   coalesce(pgcqrs.rebuilt_from(source, needed, 'f.old'),
                            format('jsonb_to_record(f.old) AS r(%s)', shape)));
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

-- V18's key views, the old rows rebuilt through rebuilt_from.
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
        SELECT %7$s FROM pgcqrs.batch b CROSS JOIN LATERAL %8$s
         WHERE b.relid = %5$s AND b.old IS NOT NULL
           AND (b.op = 'D' OR NOT EXISTS (SELECT 1 FROM %3$s t WHERE %9$s AND %6$s))$v$,
        s.delta_schema, relname, source, pgcqrs.key_join(source, s.key, 'b'),
        format('%L::regclass', source::text), same, rebuilt,
        coalesce(pgcqrs.rebuilt_from(source, needed, 'b.old'),
                 format('jsonb_to_record(b.old) AS r(%s)', shape)),
        -- (probed by the rebuilt row's key, after a join's condition on
        -- the row has applied)
        (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(s.key) p),
        current);
END
$fn$;

-- Every model's delta stand-ins and key views made again. One that cannot
-- be made (a model over a table that changed shape since it was declared,
-- recomputed whole until declared again) is left as it was, with a
-- warning.
DO $again$
DECLARE
    s pgcqrs.read_model_sources;
BEGIN
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r ORDER BY r.model, r.source LOOP
        BEGIN
            IF s.term IS NOT NULL THEN
                EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.plus_path, ',', 1));
                EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.minus_path, ',', 1));
                EXECUTE format('DROP SCHEMA %s CASCADE', s.old_schema);
                PERFORM pgcqrs.delta_stand_in(s.model, s.source, substring(s.delta_schema FROM '^pgcqrs_d(\d+)_')::int,
                                             substr(s.search_path, strpos(s.search_path, ', ') + 2));
            END IF;
            PERFORM pgcqrs.key_view(s.model, s.source);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'stand-ins of % over % not made again: %', s.model, s.source, SQLERRM;
        END;
    END LOOP;
END
$again$;
-- (making them again writes V12's note on counts and sums; the averages
-- moved with them are named in it again)
SELECT pgcqrs.note_averages(m.name) FROM pgcqrs.read_models m WHERE m.kept = 'incremental' ORDER BY m.name;
