-- Whether one read model has caught up with another: no captured change to
-- the tables `model` reads is shown by `other`'s snapshot and not by its
-- own. A list of order_summary rows takes its total from the count
-- customer_orders or daily_sales keeps only then
-- (sql/queries/count_*.sql). A view, so a statement that reads it plans
-- it once with itself; it reads the captured changes with its owner's
-- rights, and the reader role sees only the answer.
CREATE VIEW pgcqrs.caught_up AS
SELECT m.view_name AS model,
       o.view_name AS other,
       NOT EXISTS (
           SELECT 1 FROM pgcqrs.changes c
            WHERE c.relid = ANY (r.sources::oid[])
              AND c.txid >= pg_snapshot_xmin(m.current_as_of)
              AND c.txid < pg_snapshot_xmax(o.current_as_of)
              AND pg_visible_in_snapshot(c.txid, o.current_as_of)
              AND NOT pg_visible_in_snapshot(c.txid, m.current_as_of)) AS caught_up
FROM read.read_model_status m
JOIN pgcqrs.read_models r ON r.name = m.view_name
CROSS JOIN read.read_model_status o;

COMMENT ON VIEW pgcqrs.caught_up IS
    'Whether read model `model` shows every change to its tables that read model `other` shows.';
GRANT SELECT ON pgcqrs.caught_up TO pgcqrs_reader;
