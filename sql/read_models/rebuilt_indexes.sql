-- The secondary indexes a rebuild of read.<$1> drops while it fills the
-- emptied table, and the statements that make them again afterwards.
-- Left in place: unique indexes (an upsert's conflict target may be one),
-- those of constraints, and any carrying more than its definition says
-- (another tablespace, a CLUSTER mark, a statistics target, an extension's).
-- A comment is made again with its index.
SELECT format('DROP INDEX %s', i.indexrelid::regclass) AS drop_sql,
       pg_get_indexdef(i.indexrelid)
       || CASE WHEN n.note IS NULL THEN ''
               ELSE format('; COMMENT ON INDEX %s IS %L', i.indexrelid::regclass, n.note) END AS make_sql
  FROM pg_index i
  JOIN pg_class x ON x.oid = i.indexrelid
 CROSS JOIN LATERAL (SELECT obj_description(i.indexrelid, 'pg_class') AS note) n
 WHERE i.indrelid = format('read.%I', $1::text)::regclass
   AND NOT i.indisunique
   AND NOT i.indisclustered
   AND x.reltablespace = 0
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
   AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget > 0)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.deptype = 'e')
 ORDER BY i.indexrelid
