-- A captured table's trigger function names its key columns. Renaming one
-- (ALTER TABLE ... RENAME COLUMN id TO ...) made every later write to the
-- table fail in that function, whoever wrote it, until the models reading
-- the table were declared again. An event trigger now writes the function
-- again, under the new names, at the end of every RENAME COLUMN on a
-- captured table (in the same transaction).
--
-- Only a superuser may create an event trigger. Where the migrations run
-- as another role the trigger is left out, and the README's advice stands:
-- declare the models again after renaming a key column.

-- As its owner: the role renaming a column owns the table, not our
-- functions.
CREATE FUNCTION pgcqrs.capture_follows_renames() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    source regclass;
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
    END LOOP;
END
$$;

DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER pgcqrs_capture_follows_renames ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE')
            EXECUTE FUNCTION pgcqrs.capture_follows_renames();
    ELSE
        RAISE NOTICE 'not a superuser: no event trigger; after renaming a key column of a table that feeds a read model, declare the model again';
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION pgcqrs.capture_follows_renames() FROM PUBLIC;
