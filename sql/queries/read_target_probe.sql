-- Is this read target a standby, and how far is its replay behind what it
-- has received? Zero when it has replayed everything (an idle primary makes
-- the last replayed transaction old without the standby being behind).
SELECT pg_is_in_recovery() AS standby,
       CASE
           WHEN NOT pg_is_in_recovery() THEN 0::float8
           WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8
           ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS replay_lag_seconds
