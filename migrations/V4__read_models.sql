-- The read models: materialized views in the `read` schema, each with the
-- UNIQUE index that REFRESH ... CONCURRENTLY needs (on NOT NULL columns: a
-- nullable key makes CONCURRENTLY rewrite unchanged rows) plus the indexes its
-- queries use. Views hold no logic beyond the shape of their answers.
--
-- Freshness bookkeeping lives here too, so that it replicates with the views
-- and the query side never has to read the write schema:
--   read.read_model_status: per view, the newest snapshot it is known to reflect;
--   read.refresh_log:       one row per refresh, with the snapshot it covers.

CREATE TABLE read.read_model_status (
    view_name            text        NOT NULL CONSTRAINT read_model_status_pkey PRIMARY KEY,
    -- The view reflects every transaction visible in this snapshot: a token
    -- (transaction id) is covered when pg_visible_in_snapshot(token, current_as_of).
    current_as_of        pg_snapshot NOT NULL,
    -- When current_as_of was taken: what the staleness headers report.
    verified_at          timestamptz NOT NULL,
    last_refresh_at      timestamptz,
    last_duration_ms     double precision,
    rows                 bigint,
    -- The oldest change not yet in the view, as last seen by the refresher.
    pending_since        timestamptz,
    last_error           text,
    last_error_at        timestamptz,
    consecutive_failures integer     NOT NULL DEFAULT 0
);

COMMENT ON TABLE read.read_model_status IS 'Freshness of each read model: how current it is, its last refresh, and its last error.';
COMMENT ON COLUMN read.read_model_status.view_name IS 'The read model (a materialized view in this schema).';
COMMENT ON COLUMN read.read_model_status.current_as_of IS 'Snapshot of the write tables the view is known to reflect.';
COMMENT ON COLUMN read.read_model_status.verified_at IS 'When the view was last known to be current (its data is as of this time).';
COMMENT ON COLUMN read.read_model_status.last_refresh_at IS 'When the view was last refreshed.';
COMMENT ON COLUMN read.read_model_status.last_duration_ms IS 'How long the last refresh took, in milliseconds.';
COMMENT ON COLUMN read.read_model_status.rows IS 'Rows in the view after its last refresh.';
COMMENT ON COLUMN read.read_model_status.pending_since IS 'Time of the oldest change not yet in the view; empty when the view is current.';
COMMENT ON COLUMN read.read_model_status.last_error IS 'Error of the last failed refresh, if the latest attempt failed.';
COMMENT ON COLUMN read.read_model_status.last_error_at IS 'When the last refresh failed.';
COMMENT ON COLUMN read.read_model_status.consecutive_failures IS 'Failed refreshes since the last success.';

CREATE TABLE read.refresh_log (
    refresh_id   bigint      GENERATED ALWAYS AS IDENTITY CONSTRAINT refresh_log_pkey PRIMARY KEY,
    view_name    text        NOT NULL,
    covers       pg_snapshot NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    duration_ms  double precision NOT NULL,
    rows         bigint      NOT NULL,
    -- Which service instance ran it.
    instance     text        NOT NULL
);

CREATE INDEX refresh_log_view_idx ON read.refresh_log (view_name, refresh_id DESC);

COMMENT ON TABLE read.refresh_log IS 'One row per refresh of a read model.';
COMMENT ON COLUMN read.refresh_log.refresh_id IS 'Sequence number of the refresh.';
COMMENT ON COLUMN read.refresh_log.view_name IS 'The read model refreshed.';
COMMENT ON COLUMN read.refresh_log.covers IS 'Snapshot taken just before the refresh: every transaction visible in it is in the refreshed view.';
COMMENT ON COLUMN read.refresh_log.started_at IS 'When the refresh started.';
COMMENT ON COLUMN read.refresh_log.finished_at IS 'When the refresh finished.';
COMMENT ON COLUMN read.refresh_log.duration_ms IS 'Duration of the refresh, in milliseconds.';
COMMENT ON COLUMN read.refresh_log.rows IS 'Rows in the view after the refresh.';
COMMENT ON COLUMN read.refresh_log.instance IS 'Service instance that ran the refresh.';

-- Each view records the snapshot taken before it is built: everything visible
-- in that snapshot is in the view (it may hold a little more, never less).
INSERT INTO read.read_model_status (view_name, current_as_of, verified_at)
SELECT v, pg_current_snapshot(), now()
FROM unnest(ARRAY['order_summary', 'order_lines', 'customer_orders', 'daily_sales', 'product_sales']) AS v;

-- ------------------------------------------------------------- order_summary
CREATE MATERIALIZED VIEW read.order_summary AS
SELECT o.id::text      AS order_id,
       o.customer_id,
       c.name          AS customer_name,
       c.email         AS customer_email,
       coalesce(i.item_count, 0)::integer AS item_count,
       o.total::numeric(14, 2) AS total,
       o.status,
       CASE o.status
           WHEN 'pending'   THEN 'Pending'
           WHEN 'confirmed' THEN 'Confirmed'
           WHEN 'shipped'   THEN 'Shipped'
           WHEN 'delivered' THEN 'Delivered'
           WHEN 'cancelled' THEN 'Cancelled'
       END             AS status_display,
       o.cancel_reason,
       o.version,
       o.created_at,
       o.updated_at
FROM write.orders o
JOIN write.customers c ON c.id = o.customer_id
LEFT JOIN (SELECT order_id, count(*) AS item_count
           FROM write.order_items
           GROUP BY order_id) i ON i.order_id = o.id;

CREATE UNIQUE INDEX order_summary_pkey ON read.order_summary (order_id);
-- A customer's orders, newest first; the list query's default order.
CREATE INDEX order_summary_customer_idx ON read.order_summary (customer_id, created_at DESC, order_id DESC);
CREATE INDEX order_summary_created_idx ON read.order_summary (created_at DESC, order_id DESC);
CREATE INDEX order_summary_status_idx ON read.order_summary (status, created_at DESC, order_id DESC);

COMMENT ON MATERIALIZED VIEW read.order_summary IS 'One row per order, with its customer and totals: what an order page or list shows.';
COMMENT ON COLUMN read.order_summary.order_id IS 'The order''s id.';
COMMENT ON COLUMN read.order_summary.customer_id IS 'The ordering customer''s id.';
COMMENT ON COLUMN read.order_summary.customer_name IS 'The customer''s current name.';
COMMENT ON COLUMN read.order_summary.customer_email IS 'The customer''s current e-mail address.';
COMMENT ON COLUMN read.order_summary.item_count IS 'Number of lines (distinct items) in the order.';
COMMENT ON COLUMN read.order_summary.total IS 'Order total: the sum of quantity × unit price over its lines, exact.';
COMMENT ON COLUMN read.order_summary.status IS 'pending, confirmed, shipped, delivered or cancelled.';
COMMENT ON COLUMN read.order_summary.status_display IS 'The status as a label for people (Pending, Shipped, ...).';
COMMENT ON COLUMN read.order_summary.cancel_reason IS 'Why the order was cancelled; empty unless cancelled.';
COMMENT ON COLUMN read.order_summary.version IS 'The order''s version: 1 when placed, plus one per status change.';
COMMENT ON COLUMN read.order_summary.created_at IS 'When the order was placed (UTC).';
COMMENT ON COLUMN read.order_summary.updated_at IS 'When the order last changed (UTC).';

-- --------------------------------------------------------------- order_lines
CREATE MATERIALIZED VIEW read.order_lines AS
SELECT i.order_id,
       i.line_no,
       i.product_id,
       p.name                                   AS product_name,
       i.quantity,
       i.unit_price::numeric(14, 2)             AS unit_price,
       (i.quantity * i.unit_price)::numeric(16, 2) AS subtotal
FROM write.order_items i
JOIN write.products p ON p.id = i.product_id;

CREATE UNIQUE INDEX order_lines_pkey ON read.order_lines (order_id, line_no);

COMMENT ON MATERIALIZED VIEW read.order_lines IS 'One row per order line, with the product''s name and the line subtotal.';
COMMENT ON COLUMN read.order_lines.order_id IS 'The order the line belongs to.';
COMMENT ON COLUMN read.order_lines.line_no IS 'Position of the line in the order, from 1.';
COMMENT ON COLUMN read.order_lines.product_id IS 'The product ordered.';
COMMENT ON COLUMN read.order_lines.product_name IS 'The product''s current name.';
COMMENT ON COLUMN read.order_lines.quantity IS 'How many were ordered.';
COMMENT ON COLUMN read.order_lines.unit_price IS 'Price of one unit when the order was placed.';
COMMENT ON COLUMN read.order_lines.subtotal IS 'quantity × unit_price, exact.';

-- ----------------------------------------------------------- customer_orders
CREATE MATERIALIZED VIEW read.customer_orders AS
SELECT c.id::text                                    AS customer_id,
       c.name                                        AS customer_name,
       c.email                                       AS customer_email,
       count(o.id)                                   AS order_count,
       count(o.id) FILTER (WHERE o.status <> 'cancelled') AS active_order_count,
       coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0)::numeric(16, 2) AS lifetime_value,
       max(o.created_at)                             AS last_order_at
FROM write.customers c
LEFT JOIN write.orders o ON o.customer_id = c.id
GROUP BY c.id, c.name, c.email;

CREATE UNIQUE INDEX customer_orders_pkey ON read.customer_orders (customer_id);

COMMENT ON MATERIALIZED VIEW read.customer_orders IS 'One row per customer: how many orders, what they are worth, when the last was placed.';
COMMENT ON COLUMN read.customer_orders.customer_id IS 'The customer''s id.';
COMMENT ON COLUMN read.customer_orders.customer_name IS 'The customer''s current name.';
COMMENT ON COLUMN read.customer_orders.customer_email IS 'The customer''s current e-mail address.';
COMMENT ON COLUMN read.customer_orders.order_count IS 'Orders ever placed, cancelled ones included.';
COMMENT ON COLUMN read.customer_orders.active_order_count IS 'Orders placed and not cancelled.';
COMMENT ON COLUMN read.customer_orders.lifetime_value IS 'Sum of the totals of orders not cancelled.';
COMMENT ON COLUMN read.customer_orders.last_order_at IS 'When the customer last placed an order (UTC); empty if never.';

-- --------------------------------------------------------------- daily_sales
CREATE MATERIALIZED VIEW read.daily_sales AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day,
       o.status,
       count(*)                                AS orders,
       sum(o.total)::numeric(18, 2)            AS revenue
FROM write.orders o
GROUP BY 1, 2;

CREATE UNIQUE INDEX daily_sales_pkey ON read.daily_sales (day, status);

COMMENT ON MATERIALIZED VIEW read.daily_sales IS 'Orders and revenue per UTC day of placement and current status: what the statistics query reads.';
COMMENT ON COLUMN read.daily_sales.day IS 'The UTC calendar day the orders were placed.';
COMMENT ON COLUMN read.daily_sales.status IS 'The orders'' current status.';
COMMENT ON COLUMN read.daily_sales.orders IS 'Number of orders placed that day now in that status.';
COMMENT ON COLUMN read.daily_sales.revenue IS 'Sum of their totals, whatever the status.';

-- ------------------------------------------------------------- product_sales
CREATE MATERIALIZED VIEW read.product_sales AS
SELECT p.id::text                                  AS product_id,
       p.name                                      AS product_name,
       p.price::numeric(14, 2)                     AS current_price,
       count(DISTINCT i.order_id) FILTER (WHERE o.status <> 'cancelled') AS orders,
       coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0)::bigint AS units,
       coalesce(sum(i.quantity * i.unit_price) FILTER (WHERE o.status <> 'cancelled'), 0)::numeric(18, 2) AS revenue
FROM write.products p
LEFT JOIN write.order_items i ON i.product_id = p.id
LEFT JOIN write.orders o ON o.id = i.order_id
GROUP BY p.id, p.name, p.price;

CREATE UNIQUE INDEX product_sales_pkey ON read.product_sales (product_id);

COMMENT ON MATERIALIZED VIEW read.product_sales IS 'One row per product: units sold and revenue, over orders not cancelled.';
COMMENT ON COLUMN read.product_sales.product_id IS 'The product''s id.';
COMMENT ON COLUMN read.product_sales.product_name IS 'The product''s current name.';
COMMENT ON COLUMN read.product_sales.current_price IS 'The product''s catalog price today.';
COMMENT ON COLUMN read.product_sales.orders IS 'Orders (not cancelled) with at least one line of this product.';
COMMENT ON COLUMN read.product_sales.units IS 'Units sold in orders not cancelled.';
COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid.';

-- ------------------------------------------------------------- order_history
-- Kept by a trigger on the event log in the writing transaction: immediately
-- consistent, no refresh needed. "What happened to this order".
CREATE TABLE read.order_history (
    order_id       text        NOT NULL,
    order_version  integer     NOT NULL,
    event_type     text        NOT NULL,
    status         text,
    reason         text,
    payload        jsonb       NOT NULL,
    correlation_id text,
    occurred_at    timestamptz NOT NULL,
    CONSTRAINT order_history_pkey PRIMARY KEY (order_id, order_version)
);

COMMENT ON TABLE read.order_history IS 'Every event of every order, kept current by trigger: what happened to an order, and when.';
COMMENT ON COLUMN read.order_history.order_id IS 'The order.';
COMMENT ON COLUMN read.order_history.order_version IS 'The order''s version after this event.';
COMMENT ON COLUMN read.order_history.event_type IS 'OrderCreated, OrderStatusChanged or OrderCancelled.';
COMMENT ON COLUMN read.order_history.status IS 'The order''s status after this event.';
COMMENT ON COLUMN read.order_history.reason IS 'Why it was cancelled, for OrderCancelled.';
COMMENT ON COLUMN read.order_history.payload IS 'The event as recorded (JSON).';
COMMENT ON COLUMN read.order_history.correlation_id IS 'Request id of the command that caused it.';
COMMENT ON COLUMN read.order_history.occurred_at IS 'When it happened (UTC).';

CREATE FUNCTION write.project_order_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read.order_history (order_id, order_version, event_type, status, reason, payload, correlation_id, occurred_at)
    VALUES (NEW.order_id, NEW.order_version, NEW.event_type,
            CASE WHEN NEW.event_type = 'OrderCreated' THEN 'pending' ELSE NEW.payload ->> 'to' END,
            NEW.payload ->> 'reason', NEW.payload, NEW.correlation_id, NEW.occurred_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER order_events_project_history
    AFTER INSERT ON write.order_events
    FOR EACH ROW EXECUTE FUNCTION write.project_order_history();

-- Backfill, for databases that already hold events.
INSERT INTO read.order_history (order_id, order_version, event_type, status, reason, payload, correlation_id, occurred_at)
SELECT order_id, order_version, event_type,
       CASE WHEN event_type = 'OrderCreated' THEN 'pending' ELSE payload ->> 'to' END,
       payload ->> 'reason', payload, correlation_id, occurred_at
FROM write.order_events;

-- The reader role reads this schema and nothing else.
GRANT SELECT ON ALL TABLES IN SCHEMA read TO pgcqrs_reader;
-- The writer's transactions append to order_history through the trigger.
GRANT USAGE ON SCHEMA read TO pgcqrs_writer;
GRANT INSERT ON read.order_history TO pgcqrs_writer;
