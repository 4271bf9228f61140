-- Run with psql -X -a directly and through mux: outputs must be identical.
DROP TABLE IF EXISTS cmp_items;
CREATE TABLE cmp_items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2));
\d cmp_items
-- A failed statement inside a transaction, then ROLLBACK.
BEGIN;
INSERT INTO cmp_items VALUES (1, 'one', 1.50);
SELECT * FROM no_such_table;
INSERT INTO cmp_items VALUES (2, 'two', 2.50);
ROLLBACK;
SELECT count(*) FROM cmp_items;
-- COPY both ways.
\copy cmp_items FROM 'items.csv' WITH (FORMAT csv)
\copy cmp_items TO pstdout WITH (FORMAT csv)
\copy (SELECT id, upper(name) FROM cmp_items WHERE id > 2 ORDER BY id) TO pstdout
-- Multi-statement simple queries (one Query message each).
SELECT 1 AS a \; SELECT 2 AS b \; SELECT 3 AS c;
INSERT INTO cmp_items VALUES (100, 'x', 0) \; SELECT count(*) FROM cmp_items \; DELETE FROM cmp_items WHERE id = 100;
-- An empty query.
\;
;
-- A notice and an error outside a transaction.
DO $$BEGIN RAISE NOTICE 'hello from plpgsql'; END$$;
SELECT 1/0;
-- A transaction that commits.
BEGIN;
UPDATE cmp_items SET price = price * 2 WHERE id < 4;
SAVEPOINT s1;
DELETE FROM cmp_items;
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT * FROM cmp_items ORDER BY id;
\d+ cmp_items
DROP TABLE cmp_items;
