-- Lock a model kept in batches' freshness row for its batch. The batch runs
-- in REPEATABLE READ: if another instance committed a batch after this
-- one's snapshot, this is a serialization failure, not its changes
-- applied a second time.
SELECT 1 FROM read.read_model_status WHERE view_name = $1::text FOR UPDATE
