-- For the rest of a batch's transaction: index reads priced as the cached
-- reads they are (never dearer than the server says). A batch reads the
-- rows its changes name, just written and in memory; priced at the
-- default 4, a join of a batch's keys to a small table (order_lines to
-- products) became a scan of that table per key whenever the working
-- tables' statistics said they held a row or two.
SELECT set_config('random_page_cost', '1.1', true)
 WHERE current_setting('random_page_cost')::float8 > 1.1
