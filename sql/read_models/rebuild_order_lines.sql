-- Rebuild order_lines from scratch (after TRUNCATE, in one transaction).
INSERT INTO read.order_lines SELECT * FROM write.order_lines_projection
