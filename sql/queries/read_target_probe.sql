-- Is this read target a standby, is it streaming from its primary, and how
-- far is its replay behind? Streaming is NULL for a primary. The lag is zero for a primary, and for a
-- streaming standby that has replayed all it received (an idle primary
-- makes the last replayed transaction old without the standby being
-- behind; after a restart the receive position restarts at a segment
-- boundary, behind the replay position, hence >=). Otherwise it is the age
-- of the last transaction replayed, or NULL (unknown) when none has been
-- replayed since the standby started. (Without pg_read_all_stats the
-- receiver's status is hidden, but its row is not: a running receiver then
-- counts as streaming.)
WITH receiver AS (
    SELECT count(*) > 0 AND coalesce(bool_and(status = 'streaming'), true) AS streaming
    FROM pg_stat_wal_receiver
    WHERE pid IS NOT NULL
)
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN pg_is_in_recovery() THEN receiver.streaming END AS streaming,
       CASE
           WHEN NOT pg_is_in_recovery() THEN 0::float8
           WHEN receiver.streaming
                AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0::float8
           ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS replay_lag_seconds
FROM receiver
