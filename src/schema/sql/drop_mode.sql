DROP TABLE IF EXISTS {{revenue}}, {{expense}}, {{summary}} CASCADE;
DROP FUNCTION IF EXISTS {{trigger_fn}}() CASCADE;
DROP FUNCTION IF EXISTS {{apply_fn}}(boolean, bigint, bigint, date, bigint, integer) CASCADE;
