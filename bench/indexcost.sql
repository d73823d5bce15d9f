-- The cost of each constraint and index of trades, and of an order_keys row,
-- per inserted row: 40 transactions of 1,000 rows each into a fresh table.
-- Run on an empty scratch database (it creates tables accounts, markets,
-- tmpl, t and k), e.g. under `levee with-db`:
--   psql "$DB" -c 'CREATE DATABASE indexcost'; psql "$DB_indexcost" -f bench/indexcost.sql
-- Figures from one run are in bench/RESULTS.md (section 12). Issue 18.
CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS markets (id bigint PRIMARY KEY);
INSERT INTO accounts SELECT generate_series(1, 2000) ON CONFLICT DO NOTHING;
INSERT INTO markets SELECT generate_series(1, 50) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS tmpl (
    market_id bigint NOT NULL, seq bigint NOT NULL, account_id bigint NOT NULL, outcome smallint NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')), shares numeric(20,6) NOT NULL CHECK (shares > 0),
    amount numeric(20,6) NOT NULL CHECK (amount >= 0), prices numeric(20,6)[] NOT NULL, at timestamptz NOT NULL,
    idempotency_key text, PRIMARY KEY (market_id, seq));
CREATE OR REPLACE PROCEDURE measure(name text, ddl text, keyed bool, n int, INOUT ns_per_row bigint DEFAULT NULL) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; t1 timestamptz; i int;
BEGIN
  EXECUTE 'DROP TABLE IF EXISTS t; CREATE TABLE t (LIKE tmpl INCLUDING ALL); ' || ddl;
  COMMIT;
  t0 := clock_timestamp();
  FOR i IN 0..n-1 LOOP
    INSERT INTO t SELECT 1, i*1000+g, 1+(g*7)%2000, 0, 'buy', 1.5, 0.75, '{0.5,0.5}', now(), CASE WHEN keyed THEN 'key-'||(i*1000+g) END FROM generate_series(1,1000) g;
    COMMIT;
  END LOOP;
  t1 := clock_timestamp();
  ns_per_row := round(extract(epoch FROM t1 - t0) * 1e9 / (n*1000));
  RAISE NOTICE '%: % ns/row', name, ns_per_row;
END $$;
CREATE OR REPLACE PROCEDURE measure_keys(n int, INOUT ns_per_row bigint DEFAULT NULL) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; t1 timestamptz; i int;
BEGIN
  DROP TABLE IF EXISTS k; CREATE TABLE k (account_id bigint NOT NULL, key text NOT NULL, market_id bigint NOT NULL, seq bigint NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (account_id, key));
  COMMIT;
  t0 := clock_timestamp();
  FOR i IN 0..n-1 LOOP
    INSERT INTO k SELECT 1+(g*7)%2000, 'key-'||(i*1000+g), 1, i*1000+g, now() FROM generate_series(1,1000) g;
    COMMIT;
  END LOOP;
  t1 := clock_timestamp();
  ns_per_row := round(extract(epoch FROM t1 - t0) * 1e9 / (n*1000));
  RAISE NOTICE 'order_keys row (table + PK): % ns/row', ns_per_row;
END $$;
-- The measurements (levee-bench -scenario orders runs each three times, in turn):
CALL measure('PK only', '', false, 40);
CALL measure('PK + FK markets', 'ALTER TABLE t ADD FOREIGN KEY (market_id) REFERENCES markets(id);', false, 40);
CALL measure('PK + FK accounts', 'ALTER TABLE t ADD FOREIGN KEY (account_id) REFERENCES accounts(id);', false, 40);
CALL measure('PK + trades_account_idx', 'CREATE INDEX ON t (account_id, market_id, seq);', false, 40);
CALL measure('PK + trades_market_at_idx', 'CREATE INDEX ON t (market_id, at);', false, 40);
CALL measure('PK, every row keyed, no key index', '', true, 40);
CALL measure('PK + trades_idempotency_idx, every row keyed', 'CREATE UNIQUE INDEX ON t (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;', true, 40);
CALL measure('as in 0003 (2 FKs, 3 indexes), unkeyed', 'ALTER TABLE t ADD FOREIGN KEY (market_id) REFERENCES markets(id); ALTER TABLE t ADD FOREIGN KEY (account_id) REFERENCES accounts(id); CREATE INDEX ON t (account_id, market_id, seq); CREATE INDEX ON t (market_id, at); CREATE UNIQUE INDEX ON t (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;', false, 40);
CALL measure('after issue 18 (PK + trades_market_at_idx), unkeyed', 'CREATE INDEX ON t (market_id, at);', false, 40);
CALL measure_keys(40);
