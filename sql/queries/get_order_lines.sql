SELECT product_id, product_name, quantity, unit_price, subtotal
FROM read.order_lines
WHERE order_id = $1::text
ORDER BY line_no
