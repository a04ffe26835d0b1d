-- The tables a batch's statements name in a literal, named with their
-- schema.
--
-- The statements a declaration leaves behind are text, run later by the
-- service. Two of them name their own table in a literal,
-- `b.relid = 'visits'::regclass`: `old_sql` (the old versions of a table's
-- changed rows, read when a batch changed several tables) and `first_sql`
-- (the same for a later term of a delta). The literal was the table as the
-- declaring session's search path showed it, and is resolved again on the
-- service's path each time it runs. A model declared with
-- `SET search_path = team, public` over `visits` named `'visits'`; on the
-- service's path that is `public.visits` if there is one (the old versions
-- of team.visits were then never read, and a group only they still showed
-- stayed in the model), and an error otherwise (each such batch failed
-- twice and the model was recomputed whole).
--
-- The functions that write these statements (and the stand-in views, whose
-- literals are resolved when they are made again on another path, as a
-- migration does) now name the table with its schema, and the statements
-- already written are corrected.

CREATE FUNCTION pgcqrs.qualified(rel regclass) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel
$$;
COMMENT ON FUNCTION pgcqrs.qualified(regclass) IS
    'A table''s name with its schema, quoted as needed: the same table on any search path.';
REVOKE EXECUTE ON FUNCTION pgcqrs.qualified(regclass) FROM PUBLIC;

DO $patch$
DECLARE
    f record;
    def text;
    fixed text;
BEGIN
    FOR f IN SELECT * FROM (VALUES
            ('pgcqrs.any_stand_in(text, regclass, int)'::regprocedure,
             'any_stand_in.source::text', 'pgcqrs.qualified(any_stand_in.source)'),
            ('pgcqrs.delta_stand_in(text, regclass, int, text)'::regprocedure,
             'source::text', 'pgcqrs.qualified(source)'),
            ('pgcqrs.key_view(text, regclass)'::regprocedure,
             'source::text', 'pgcqrs.qualified(source)')) AS v(fn, old, new) LOOP
        def := pg_get_functiondef(f.fn);
        fixed := replace(def, f.old, f.new);
        IF fixed = def THEN
            RAISE EXCEPTION '% does not name its table as expected', f.fn;
        END IF;
        EXECUTE fixed;
    END LOOP;
END
$patch$;

-- The statements already written: each names its own table once.
UPDATE pgcqrs.read_model_sources r
   SET old_sql = regexp_replace(r.old_sql, $re$b\.relid = '(?:[^']|'')*'::regclass$re$,
                                replace(format('b.relid = %L::regclass', pgcqrs.qualified(r.source)), '\', '\\'))
 WHERE r.old_sql IS NOT NULL;
UPDATE pgcqrs.read_model_sources r
   SET first_sql = regexp_replace(r.first_sql, $re$b\.relid = '(?:[^']|'')*'::regclass$re$,
                                  replace(format('b.relid = %L::regclass', pgcqrs.qualified(r.source)), '\', '\\'))
 WHERE r.first_sql IS NOT NULL;
