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
-- The functions that write these statements now name the table with its
-- schema, and the statements already written are corrected. (The stand-in
-- views those functions make held no such fault: a view's literal is
-- resolved when it is made, and the view keeps the table's id. Their
-- literals are qualified too, so that one made again on another path, as a
-- migration does, means the same table.) The functions are patched where
-- they are, as written by V14 and V25: a later migration that writes one
-- of them again starts from the patched text.

CREATE FUNCTION pgcqrs.qualified(rel regclass) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel
$$;
COMMENT ON FUNCTION pgcqrs.qualified(regclass) IS
    'A table''s name with its schema, quoted as needed: the same table on any search path.';
-- (callable by every role, as pg_class is readable by every role: the
-- query side, as pgcqrs_reader, names a model's sources with it)

DO $patch$
DECLARE
    f record;
    def text;
    fixed text;
BEGIN
    FOR f IN SELECT * FROM (VALUES
            ('pgcqrs.any_stand_in(text, regclass, int)'::regprocedure,
             'any_stand_in.source::text', 'pgcqrs.qualified(any_stand_in.source)', 1),
            ('pgcqrs.delta_stand_in(text, regclass, int, text)'::regprocedure,
             'source::text', 'pgcqrs.qualified(source)', 2),
            ('pgcqrs.key_view(text, regclass)'::regprocedure,
             'source::text', 'pgcqrs.qualified(source)', 1)) AS v(fn, old, new, times) LOOP
        def := pg_get_functiondef(f.fn);
        IF (length(def) - length(replace(def, f.old, ''))) / length(f.old) <> f.times THEN
            RAISE EXCEPTION '% does not name its table as expected', f.fn;
        END IF;
        fixed := replace(def, f.old, f.new);
        EXECUTE fixed;
    END LOOP;
END
$patch$;

-- The statements already written: each names its own table once, as
-- format's %L wrote it (E'...' with doubled backslashes where the name has
-- one).
UPDATE pgcqrs.read_model_sources r
   SET old_sql = regexp_replace(r.old_sql, $re$b\.relid = E?'(?:[^'\\]|''|\\.)*'::regclass$re$,
                                replace(format('b.relid = %L::regclass', pgcqrs.qualified(r.source)), '\', '\\'))
 WHERE r.old_sql IS NOT NULL AND pgcqrs.qualified(r.source) IS NOT NULL;
UPDATE pgcqrs.read_model_sources r
   SET first_sql = regexp_replace(r.first_sql, $re$b\.relid = E?'(?:[^'\\]|''|\\.)*'::regclass$re$,
                                  replace(format('b.relid = %L::regclass', pgcqrs.qualified(r.source)), '\', '\\'))
 WHERE r.first_sql IS NOT NULL AND pgcqrs.qualified(r.source) IS NOT NULL;
-- Any left as they were is said (not refused: the model goes on as
-- before, and declaring it again writes its statements anew).
DO $check$
DECLARE
    s pgcqrs.read_model_sources;
BEGIN
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r
              WHERE NOT coalesce(strpos(r.old_sql, format('b.relid = %L::regclass', pgcqrs.qualified(r.source))) > 0, true)
                 OR NOT coalesce(strpos(r.first_sql, format('b.relid = %L::regclass', pgcqrs.qualified(r.source))) > 0, true) LOOP
        RAISE WARNING 'the statements of read model % over % do not name their table as expected; declare the model again',
            s.model, s.source;
    END LOOP;
END
$check$;
