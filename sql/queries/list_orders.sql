-- A page of orders. The service appends the conditions of the filters
-- given (one statement per combination, so each is planned once), the
-- newest-first order and the limit.
SELECT order_id, customer_id, customer_name, customer_email, item_count, total,
       status, status_display, cancel_reason, version, created_at, updated_at
FROM read.order_summary
