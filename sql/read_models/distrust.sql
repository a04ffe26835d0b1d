-- Read model $1 may have missed changes (a table it reads joined a
-- partition or inheritance tree, whose writes are not captured): its
-- snapshot is marked as taken on no cluster, so that its next refresh
-- that can run recomputes it whole, as after a restore.
UPDATE read.read_model_status SET cluster_id = 0 WHERE view_name = $1::text
