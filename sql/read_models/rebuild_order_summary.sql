-- Rebuild order_summary from scratch (after TRUNCATE, in one transaction).
INSERT INTO read.order_summary SELECT * FROM write.order_summary_projection
