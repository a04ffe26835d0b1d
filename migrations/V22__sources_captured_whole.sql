-- A table's changes are captured by statement triggers on that table, and
-- PostgreSQL fires a statement trigger only on the table a statement names:
-- a write addressed to a partition does not fire its partitioned table's,
-- and an UPDATE or DELETE of an inheritance parent that reaches its
-- children fires only the parent's. A read model over such a table would
-- miss those writes without a word and keep the error for good (every
-- later delta moves from the wrong rows). So a declaration over one is
-- refused, and a refresh that finds a source has gained such a relative
-- since (ALTER TABLE ... INHERIT, ATTACH PARTITION) fails and says why
-- (sql/read_models/declared.sql).

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

CREATE FUNCTION pgcqrs.sources_captured_whole() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    gap record;
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
    RETURN NEW;
END
$$;

CREATE TRIGGER read_models_sources_captured_whole
    BEFORE INSERT OR UPDATE OF sources ON pgcqrs.read_models
    FOR EACH ROW EXECUTE FUNCTION pgcqrs.sources_captured_whole();
