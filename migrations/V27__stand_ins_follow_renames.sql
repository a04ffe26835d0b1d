-- A column renamed in a table a model kept in batches reads: the model's
-- stand-ins written again, instead of a whole recomputation per change.
--
-- The stand-ins through which a batch reads its changes (the key views,
-- the plus and minus parts of a delta, the old rows) name the table's
-- columns, and the captured JSON of an old row is keyed by their names.
-- After ALTER TABLE ... RENAME COLUMN they no longer matched, and the
-- refresher recomputed the model whole at every change until it was
-- declared again (a whole recomputation per change: at 1M orders, seconds
-- for what a batch does in milliseconds).
--
-- V23's event trigger, which writes the table's capture function again
-- under the new names, now also writes again the stand-ins of every model
-- kept in batches that reads the table, from the model's query as it
-- reads now (a view follows a rename), and marks the model as declared
-- anew: a running instance takes it up, and one still holding the old
-- statements does nothing with them. Changes captured before the rename
-- are keyed by the old names, so the model's next refresh recomputes it
-- whole once (the path a restored model takes); batches follow.
--
-- Where the migrations run without a superuser there is no event trigger,
-- and the refresher goes on recomputing such a model whole, as before.

-- The stand-ins of a model kept in batches, dropped and made again as a
-- declaration makes them; the model is recomputed whole at its next
-- refresh. Nothing for a model kept whole.
CREATE FUNCTION pgcqrs.stand_ins_again(model text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    m          pgcqrs.read_models;
    def        regclass := format('pgcqrs_defs.%I', model)::regclass;
    old_path   text := current_setting('search_path');
    path       text;
    definition text;
    sources    regclass[];
    terms      int[];
    s          text;
    i          int;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = stand_ins_again.model FOR UPDATE;
    IF NOT FOUND OR m.kept <> 'incremental' THEN
        RETURN;
    END IF;
    SELECT array_agg(r.source ORDER BY substring(r.delta_schema FROM '^pgcqrs_d(\d+)_')::int),
           array_agg(substring(r.delta_schema FROM '^pgcqrs_d(\d+)_')::int
                     ORDER BY substring(r.delta_schema FROM '^pgcqrs_d(\d+)_')::int),
           min(substr(r.search_path, strpos(r.search_path, ', ') + 2))
      INTO sources, terms, path
      FROM pgcqrs.read_model_sources r WHERE r.model = m.name;
    IF sources IS NULL THEN
        RETURN;
    END IF;
    FOR s IN SELECT x FROM pgcqrs.read_model_sources r,
                    unnest(ARRAY[quote_ident(r.delta_schema), r.any_schema, r.old_schema,
                                 split_part(r.plus_path, ',', 1), split_part(r.minus_path, ',', 1)]) x
              WHERE r.model = m.name AND x IS NOT NULL LOOP
        EXECUTE format('DROP SCHEMA %s CASCADE', s);
    END LOOP;
    EXECUTE format('DROP TABLE IF EXISTS pgcqrs_delta.%I', m.name);
    DELETE FROM pgcqrs.read_model_sources r WHERE r.model = m.name;
    UPDATE pgcqrs.read_models r
       SET delta_sql = NULL,
           kept_reason = regexp_replace(r.kept_reason, '; counts and sums of .* kept by delta$', ''),
           defined_at = clock_timestamp()
     WHERE r.name = m.name;
    PERFORM set_config('search_path', path, true);
    definition := pg_get_viewdef(def);
    PERFORM set_config('search_path', old_path, true);
    FOR i IN 1 .. cardinality(sources) LOOP
        PERFORM pgcqrs.stand_in(m.name, sources[i], terms[i], path, definition, m.key);
    END LOOP;
    -- a mark no cluster has: recomputed whole, once
    UPDATE read.read_model_status SET cluster_id = 0 WHERE view_name = m.name;
    PERFORM pg_notify('pgcqrs_read_models', m.name);
END
$fn$;
REVOKE EXECUTE ON FUNCTION pgcqrs.stand_ins_again(text) FROM PUBLIC;
-- (as V21's declarations: only warnings and errors reach the one renaming)
ALTER FUNCTION pgcqrs.stand_ins_again(text) SET client_min_messages = warning;

-- V23's event trigger, and the stand-ins of the models reading the table.
CREATE OR REPLACE FUNCTION pgcqrs.capture_follows_renames() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    source regclass;
    model  text;
BEGIN
    FOR source IN
        SELECT DISTINCT c.objid::regclass
          FROM pg_event_trigger_ddl_commands() c
         WHERE c.classid = 'pg_class'::regclass
           AND c.object_type = 'table column'   -- RENAME COLUMN
           AND EXISTS (SELECT 1 FROM pg_trigger t
                        WHERE t.tgrelid = c.objid AND t.tgname = 'pgcqrs_capture_insert')
    LOOP
        PERFORM pgcqrs.capture(source);
        FOR model IN SELECT r.name FROM pgcqrs.read_models r
                      WHERE source = ANY (r.sources) AND r.kept = 'incremental' ORDER BY r.name LOOP
            BEGIN
                PERFORM pgcqrs.stand_ins_again(model);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'the stand-ins of read model % were not written again after a column of % was renamed: %',
                              model, source, SQLERRM
                    USING HINT = 'The model is recomputed whole at every change until it is declared again.';
            END;
        END LOOP;
    END LOOP;
END
$$;
