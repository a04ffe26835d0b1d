-- What a read model reflects now: its snapshot, whether that snapshot can be
-- trusted on this cluster (not restored from another one, not ahead of the
-- present), where its last batch stopped inside a transaction, and whether
-- it is exact (equals its query as of that snapshot).
SELECT current_as_of::text                                   AS covers,
       pgcqrs.snapshot_trusted(current_as_of, cluster_id)    AS trusted,
       resume_txid::text                                     AS resume_txid,
       resume_src::int                                       AS resume_src,
       resume_seq,
       resume_key,
       exact
FROM read.read_model_status
WHERE view_name = $1::text
