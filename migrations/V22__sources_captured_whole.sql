-- A table's changes are captured by statement triggers on that table, and
-- PostgreSQL fires a statement trigger only on the table a statement names:
-- a write addressed to a partition or an inheritance child does not fire
-- its parent's, and a write addressed to the parent does not fire the
-- partition's or the child's. A read model over either would miss such
-- writes without a word and keep the error for good (every later delta
-- moves from the wrong rows). So a declaration over one is
-- refused, and a refresh that finds a source has gained such a relative
-- since (ALTER TABLE ... INHERIT, ATTACH PARTITION) fails and says why
-- (sql/read_models/declared.sql).
--
-- And a declaration whose query calls the time, a VOLATILE function, or a
-- function of its own that is not IMMUTABLE is taken with a WARNING: its
-- rows depend on more than the tables it reads, which alone start a
-- refresh.

-- Why `source` cannot be captured whole, or NULL when it can.
CREATE FUNCTION pgcqrs.capture_gap(source regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
               WHEN c.relkind = 'p' THEN 'is partitioned'
               WHEN c.relispartition THEN 'is a partition'
               WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid) THEN 'has inheritance children'
               WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) THEN 'inherits from another table'
           END
      FROM pg_class c
     WHERE c.oid = source
$$;

-- What a model's query calls whose answer changes while the tables it
-- reads do not, or NULL: the time (now(), CURRENT_DATE and the like), a
-- VOLATILE function, or a function of its own that is not IMMUTABLE (it
-- may read another table). Built-in STABLE functions that only follow the
-- session's settings (format(), to_char()) are left alone: the refresher's
-- sessions keep theirs. Read from the query tree: pg_depend records no
-- dependency on a built-in function. A view the query reads is not looked
-- into.
CREATE FUNCTION pgcqrs.unsteady_calls(model text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(DISTINCT called, ', ')
      FROM (SELECT p.oid::regprocedure::text AS called
              FROM pg_rewrite r
             CROSS JOIN LATERAL regexp_matches(r.ev_action::text, ':(funcid|opno) (\d+)', 'g') x
              JOIN pg_proc p ON p.oid = CASE x[1] WHEN 'funcid' THEN x[2]::oid
                                        ELSE (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = x[2]::oid) END
             WHERE r.ev_class = to_regclass(format('pgcqrs_defs.%I', model))
               AND (p.provolatile = 'v'
                    OR p.oid IN ('pg_catalog.now()'::regprocedure, 'pg_catalog.statement_timestamp()'::regprocedure,
                                 'pg_catalog.transaction_timestamp()'::regprocedure)
                    OR (p.provolatile = 's' AND p.pronamespace <> 'pg_catalog'::regnamespace))
            UNION ALL
            SELECT 'CURRENT_DATE, CURRENT_TIMESTAMP, CURRENT_USER or the like'
              FROM pg_rewrite r
             WHERE r.ev_class = to_regclass(format('pgcqrs_defs.%I', model))
               AND r.ev_action::text LIKE '%{SQLVALUEFUNCTION %') calls
$$;

CREATE FUNCTION pgcqrs.sources_captured_whole() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    gap      record;
    unsteady text;
BEGIN
    SELECT s AS source, pgcqrs.capture_gap(s) AS why INTO gap
      FROM unnest(NEW.sources) s
     WHERE pgcqrs.capture_gap(s) IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'read model % reads %, which %', NEW.name, gap.source, gap.why
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Changes are captured on the table a statement names: writes addressed to a partition, or to a parent that reaches its children, would never reach the model.',
                  HINT = 'Declare the model over tables without partitions or inheritance.';
    END IF;
    IF TG_OP = 'INSERT' THEN
        unsteady := pgcqrs.unsteady_calls(NEW.name);
        IF unsteady IS NOT NULL THEN
            RAISE WARNING 'read model % calls %, whose answer changes while the tables it reads do not: it is refreshed only when those change', NEW.name, unsteady
                USING HINT = 'Keep such calls out of the query (filter by time when reading the model), or make the value a column of a table it reads.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER read_models_sources_captured_whole
    BEFORE INSERT OR UPDATE OF sources ON pgcqrs.read_models
    FOR EACH ROW EXECUTE FUNCTION pgcqrs.sources_captured_whole();
