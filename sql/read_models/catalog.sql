-- Every declared read model, as the refresher runs it.
SELECT m.name, m.defined_at, m.kept, m.mode, m.schedule, m.timeout_ms, m.description, m.full_sql, m.apply_sql, m.delta_sql,
       (SELECT coalesce(array_agg(s::oid ORDER BY i), '{}') FROM unnest(m.sources) WITH ORDINALITY u(s, i)) AS sources,
       (SELECT coalesce(array_agg(s::text ORDER BY i), '{}') FROM unnest(m.sources) WITH ORDINALITY u(s, i)) AS source_names
FROM pgcqrs.read_models m
ORDER BY m.defined_at, m.name
