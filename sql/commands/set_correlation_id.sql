-- The request id, for the event-log triggers of this transaction to record.
SELECT set_config('pgcqrs.correlation_id', $1, true)
