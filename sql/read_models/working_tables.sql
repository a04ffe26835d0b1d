-- The working tables batches fill and empty inside their transactions: the
-- shared change and key tables, each model's delta table, and the tables of
-- old and first versions of the rows a batch changed. Emptied by DELETE,
-- they are vacuumed between batches (see the refresher's tidy job); each
-- name is quoted, ready for VACUUM. Only those this login may vacuum (it
-- has its owner's rights, or the database owner's): another's would be a
-- warning at every pass.
SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND c.relpersistence = 'u'
   AND ((n.nspname = 'pgcqrs' AND c.relname IN ('batch', 'batch_keys'))
        OR n.nspname = 'pgcqrs_delta'
        OR (n.nspname LIKE 'pgcqrs\_%' AND c.relname IN ('pgcqrs_old_rows', 'pgcqrs_first_rows')))
   AND (pg_has_role(c.relowner, 'USAGE')
        OR pg_has_role((SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'USAGE'))
 ORDER BY 1
