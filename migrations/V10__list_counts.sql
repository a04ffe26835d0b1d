-- Which transactions changed which tables, without the rows: what the
-- query side needs to tell whether one read model's count can stand beside
-- another's rows (sql/queries/count_*.sql). The reader role reads this and
-- still nothing of the captured rows or the write schema.
CREATE VIEW pgcqrs.change_txids AS
SELECT c.txid, c.relid FROM pgcqrs.changes c;

COMMENT ON VIEW pgcqrs.change_txids IS
    'Transaction and table of every captured change (no keys, no rows): whether a read model has caught up with another.';
GRANT SELECT ON pgcqrs.change_txids TO pgcqrs_reader;
