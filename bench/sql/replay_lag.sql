-- The standby's replay lag as the primary sees it, in seconds; NULL when no
-- standby is connected. An idle standby reports no lag (NULL interval): 0.
SELECT max(coalesce(extract(epoch FROM replay_lag), 0))::float8
FROM pg_stat_replication
