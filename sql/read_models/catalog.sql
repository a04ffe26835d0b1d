-- Every declared read model, as the refresher runs it.
SELECT m.name, m.defined_at, m.kept, m.mode, m.schedule, m.timeout_ms, m.description, m.full_sql, m.apply_sql, m.delta_sql,
       (SELECT coalesce(array_agg(s::oid ORDER BY i), '{}') FROM unnest(m.sources) WITH ORDINALITY u(s, i)) AS sources,
       -- named with their schema: a regclass as text leaves out a schema on
       -- the search path, so the same table would show as `gauges` here and
       -- `public.gauges` on a connection with another path
       -- (one for each of sources, in its order)
       (SELECT coalesce(array_agg(coalesce(pgcqrs.qualified(s), s::text) ORDER BY i), '{}')
          FROM unnest(m.sources) WITH ORDINALITY u(s, i)) AS source_names
FROM pgcqrs.read_models m
ORDER BY m.defined_at, m.name
