-- Old rows of a type whose JSON its input cannot read, captured as text.
--
-- to_jsonb writes a value of a type that has a cast to json (hstore,
-- PostGIS's geometry: types of an extension, not built in) through that
-- cast: an hstore as a JSON object, a geometry as GeoJSON. Neither input
-- function reads that back, so every batch that rebuilt an old row
-- holding one failed ('syntax error in hstore'), and the model was only
-- kept by recomputing it whole after two failed batches, again and again.
--
-- The capture now writes such a column of an old row as its text (its
-- output function's, under the capture's fixed settings), on top of the
-- row's JSON: `(old ->> col)::type` and jsonb_to_record read it back
-- through the input function, as for any other type. It is found
-- through domains, as an array's element and as a composite's field (an
-- array or a composite holding one is written whole as its text, which
-- jsonb_to_record reads through the input function too). A key view
-- takes such a column for changed (its JSON and the captured text never
-- compare equal), which re-projects a key it could have skipped, never
-- one it must not.
--
-- Changes captured before this migration keep the JSON they were taken
-- with: a batch that reads one of them still fails, and the model is
-- recomputed whole once, as before.
--
-- And a query that takes a field of a composite column ((t).h) depends on
-- the composite type's own relation, which a declaration took for a
-- source it could not capture ("reads tagged, whose changes cannot be
-- captured"). A composite type holds no rows: it is no source.

-- The types a value of type t is made of: t itself and, through domains,
-- array elements and composite fields, every type under it.
CREATE FUNCTION pgcqrs.type_parts(t oid) RETURNS SETOF oid
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE x(oid) AS (
        SELECT t
        UNION
        SELECT s.u
          FROM x JOIN pg_type y ON y.oid = x.oid
         CROSS JOIN LATERAL (SELECT y.typbasetype WHERE y.typtype = 'd'
                             UNION ALL
                             SELECT y.typelem WHERE y.typcategory = 'A' AND y.typelem <> 0
                             UNION ALL
                             SELECT a.atttypid FROM pg_attribute a
                              WHERE y.typtype = 'c' AND a.attrelid = y.typrelid
                                AND a.attnum > 0 AND NOT a.attisdropped) s(u)
    )
    SELECT x.oid FROM x
$$;

-- V24's, through type_parts.
CREATE OR REPLACE FUNCTION pgcqrs.holds_json(t oid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pgcqrs.type_parts(t) p WHERE p = 'json'::regtype)
$$;

-- Whether to_jsonb writes a value of type t, or a part of it (through a
-- domain, as an array's element or a composite's field), through a cast
-- to json: a type not built in, neither a domain, an array nor a
-- composite, with a cast function to json.
CREATE FUNCTION pgcqrs.json_by_cast(t oid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pgcqrs.type_parts(t) p JOIN pg_type y ON y.oid = p
                    WHERE p >= 16384
                      AND y.typtype NOT IN ('d', 'c')
                      AND NOT (y.typcategory = 'A' AND y.typelem <> 0)
                      AND EXISTS (SELECT 1 FROM pg_cast c
                                   WHERE c.castsource = p AND c.casttarget = 'json'::regtype
                                     AND c.castmethod = 'f'))
$$;

-- The JSON a capture function takes of an old row (pgcqrs_o) of source:
-- the row's, with each column that json_by_cast finds written as its text.
CREATE FUNCTION pgcqrs.old_image(source regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'to_jsonb(pgcqrs_o)'
           || coalesce(string_agg(format(' OPERATOR(pg_catalog.||) jsonb_build_object(%L, pgcqrs_o.%I::pg_catalog.text)',
                                         a.attname, a.attname), '' ORDER BY a.attnum), '')
      FROM pg_attribute a
     WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
       AND pgcqrs.json_by_cast(a.atttypid)
$$;
REVOKE EXECUTE ON FUNCTION pgcqrs.type_parts(oid), pgcqrs.json_by_cast(oid), pgcqrs.old_image(regclass) FROM PUBLIC;

-- The capture's old rows taken through old_image.
DO $patch$
DECLARE
    src   text;
    fixed text;
BEGIN
    SELECT p.prosrc INTO src FROM pg_proc p WHERE p.oid = 'pgcqrs.capture(regclass)'::regprocedure;
    fixed := replace(replace(src, 'to_jsonb(pgcqrs_o)', '%6$s'),
                     '$body$ $f$, fname, source::oid, keyx, keyo, same);',
                     '$body$ $f$, fname, source::oid, keyx, keyo, same, pgcqrs.old_image(source));');
    IF (length(src) - length(replace(src, 'to_jsonb(pgcqrs_o)', ''))) / length('to_jsonb(pgcqrs_o)') <> 3
       OR strpos(fixed, 'same, pgcqrs.old_image(source));') = 0 THEN
        RAISE EXCEPTION 'pgcqrs.capture does not take old rows as expected';
    END IF;
    EXECUTE format('CREATE OR REPLACE FUNCTION pgcqrs.capture(source regclass) RETURNS void LANGUAGE plpgsql AS %L', fixed);
END
$patch$;

-- Every captured table holding such a column: its trigger function
-- written again.
DO $again$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT DISTINCT g.tgrelid::regclass FROM pg_trigger g
              WHERE g.tgname = 'pgcqrs_capture_insert'
                AND pgcqrs.old_image(g.tgrelid) <> 'to_jsonb(pgcqrs_o)'
              ORDER BY 1 LOOP
        BEGIN
            PERFORM pgcqrs.capture(t);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'capture of % not written again: %', t, SQLERRM;
        END;
    END LOOP;
END
$again$;

-- A composite type is no source of a model.
DO $patch$
DECLARE
    src   text;
    fixed text;
BEGIN
    SELECT p.prosrc INTO src FROM pg_proc p
     WHERE p.oid = 'pgcqrs.define_read_model(text, text, text[], text, text, text[], text)'::regprocedure;
    fixed := replace(src, $old$      INTO direct, tables
      FROM deps JOIN pg_class c ON c.oid = deps.rel;$old$, $new$      INTO direct, tables
      FROM deps JOIN pg_class c ON c.oid = deps.rel AND c.relkind <> 'c';$new$);
    IF fixed = src THEN
        RAISE EXCEPTION 'pgcqrs.define_read_model does not find its sources as expected';
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
