SELECT 'autocommit works' AS msg;
BEGIN;
SELECT 'inside a transaction' AS msg;
COMMIT;
