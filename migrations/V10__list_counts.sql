-- Whether one read model's count can stand beside another's rows: every
-- change to the tables `model` reads that `other`'s snapshot shows is
-- shown by `model`'s too. A list of order_summary rows takes its total
-- from customer_orders or daily_sales only then (the reader role cannot
-- read the captured changes, so this asks for it). False when either is
-- unknown.
CREATE FUNCTION pgcqrs.covers(model text, other text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
SELECT coalesce((
    SELECT NOT EXISTS (
               SELECT 1 FROM pgcqrs.changes c
                WHERE c.relid = ANY (r.sources::oid[])
                  AND c.txid >= pg_snapshot_xmin(m.current_as_of)
                  AND c.txid < pg_snapshot_xmax(o.current_as_of)
                  AND pg_visible_in_snapshot(c.txid, o.current_as_of)
                  AND NOT pg_visible_in_snapshot(c.txid, m.current_as_of))
      FROM read.read_model_status m
      JOIN pgcqrs.read_models r ON r.name = m.view_name
      JOIN read.read_model_status o ON o.view_name = other
     WHERE m.view_name = model), false)
$fn$;

COMMENT ON FUNCTION pgcqrs.covers(text, text) IS
    'Whether read model `model` shows every change to its tables that read model `other` shows.';
REVOKE EXECUTE ON FUNCTION pgcqrs.covers(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgcqrs.covers(text, text) TO pgcqrs_reader;
