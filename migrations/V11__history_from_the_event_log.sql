-- The order history is the event log, read through a view: every event was
-- written twice (to write.order_events, and by a trigger to a copy in
-- read.order_history), and change detection no longer reads the log by
-- transaction, so its txid index goes too. Both cost every command.
DROP TRIGGER order_events_project_history ON write.order_events;
DROP FUNCTION write.project_order_history();
REVOKE INSERT ON read.order_history FROM pgcqrs_writer;
DROP TABLE read.order_history;
DROP INDEX write.order_events_txid_event_idx;

-- Read with its owner's rights: the reader role reads the history and
-- still nothing of the write schema. Looked up by the log's unique
-- (order_id, order_version) index.
CREATE VIEW read.order_history WITH (security_barrier) AS
SELECT e.order_id,
       e.order_version,
       e.event_type,
       CASE WHEN e.event_type = 'OrderCreated' THEN 'pending' ELSE e.payload ->> 'to' END AS status,
       e.payload ->> 'reason' AS reason,
       e.payload,
       e.correlation_id,
       e.occurred_at
FROM write.order_events e;

COMMENT ON VIEW read.order_history IS 'Every event of every order, read from the event log: what happened to an order, and when. Always current.';
COMMENT ON COLUMN read.order_history.order_id IS 'The order.';
COMMENT ON COLUMN read.order_history.order_version IS 'The order''s version after this event.';
COMMENT ON COLUMN read.order_history.event_type IS 'OrderCreated, OrderStatusChanged or OrderCancelled.';
COMMENT ON COLUMN read.order_history.status IS 'The order''s status after this event.';
COMMENT ON COLUMN read.order_history.reason IS 'Why it was cancelled, for OrderCancelled.';
COMMENT ON COLUMN read.order_history.payload IS 'The event as recorded (JSON).';
COMMENT ON COLUMN read.order_history.correlation_id IS 'Request id of the command that caused it.';
COMMENT ON COLUMN read.order_history.occurred_at IS 'When it happened (UTC).';
GRANT SELECT ON read.order_history TO pgcqrs_reader;
