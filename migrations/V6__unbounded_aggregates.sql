-- Sums of money that no accepted input can overflow.
--
-- V4 gave the aggregates fixed precisions: customer_orders.lifetime_value
-- numeric(16,2), daily_sales.revenue and product_sales.revenue
-- numeric(18,2). An order may total 999,999,999,999.99 (write.money), so
-- 101 such orders of one customer overflowed lifetime_value, and 10,001 on
-- one day or of one product overflowed revenue. A REFRESH is all or
-- nothing: from then on every refresh of the view failed, for every
-- customer, and min_token reads of it answered 503 for good.
--
-- The sums are now unconstrained numeric, which has no precision to
-- overflow. Their values keep two decimals: they are sums of write.money
-- (scale 2), and an empty sum is 0.00.
--
-- What stays bounded, and why it cannot overflow:
--   * order_summary.total, order_lines.unit_price (numeric(14,2)) are
--     write.money values, copied;
--   * order_lines.subtotal (numeric(16,2)) is quantity × unit_price, and an
--     order cannot commit unless its total, a write.money below 10^12, is
--     the sum of its lines (V2), none of them negative: every subtotal is
--     below 10^12 too;
--   * product_sales.units (bigint): via the API a line holds at most
--     1,000,000 units, so 2^63 units of one product take over 9 × 10^12
--     lines; PostgreSQL cannot store that many (a table holds at most
--     32 TB, and a line row takes more than 40 bytes);
--   * counts (bigint) cannot reach 2^63 rows.
--
-- Materialized views cannot change a column's type: the three are dropped
-- and created again with the same columns, indexes, comments and grants.
-- Creating them computes them from the write tables, in this transaction;
-- their read_model_status rows still hold an older snapshot, which they
-- cover (a view may hold more than its snapshot, never less).

-- ----------------------------------------------------------- customer_orders
DROP MATERIALIZED VIEW read.customer_orders;

CREATE MATERIALIZED VIEW read.customer_orders AS
SELECT c.id::text                                    AS customer_id,
       c.name                                        AS customer_name,
       c.email                                       AS customer_email,
       count(o.id)                                   AS order_count,
       count(o.id) FILTER (WHERE o.status <> 'cancelled') AS active_order_count,
       coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0.00)::numeric AS lifetime_value,
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
COMMENT ON COLUMN read.customer_orders.lifetime_value IS 'Sum of the totals of orders not cancelled (exact, two decimals, no upper bound).';
COMMENT ON COLUMN read.customer_orders.last_order_at IS 'When the customer last placed an order (UTC); empty if never.';

-- --------------------------------------------------------------- daily_sales
DROP MATERIALIZED VIEW read.daily_sales;

CREATE MATERIALIZED VIEW read.daily_sales AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day,
       o.status,
       count(*)                                AS orders,
       sum(o.total)::numeric                   AS revenue
FROM write.orders o
GROUP BY 1, 2;

CREATE UNIQUE INDEX daily_sales_pkey ON read.daily_sales (day, status);

COMMENT ON MATERIALIZED VIEW read.daily_sales IS 'Orders and revenue per UTC day of placement and current status: what the statistics query reads.';
COMMENT ON COLUMN read.daily_sales.day IS 'The UTC calendar day the orders were placed.';
COMMENT ON COLUMN read.daily_sales.status IS 'The orders'' current status.';
COMMENT ON COLUMN read.daily_sales.orders IS 'Number of orders placed that day now in that status.';
COMMENT ON COLUMN read.daily_sales.revenue IS 'Sum of their totals, whatever the status (exact, two decimals, no upper bound).';

-- ------------------------------------------------------------- product_sales
DROP MATERIALIZED VIEW read.product_sales;

CREATE MATERIALIZED VIEW read.product_sales AS
SELECT p.id::text                                  AS product_id,
       p.name                                      AS product_name,
       p.price::numeric(14, 2)                     AS current_price,
       count(DISTINCT i.order_id) FILTER (WHERE o.status <> 'cancelled') AS orders,
       coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0)::bigint AS units,
       coalesce(sum(i.quantity * i.unit_price) FILTER (WHERE o.status <> 'cancelled'), 0.00)::numeric AS revenue
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
COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid (exact, two decimals, no upper bound).';

GRANT SELECT ON read.customer_orders, read.daily_sales, read.product_sales TO pgcqrs_reader;
