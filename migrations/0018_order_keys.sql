-- The order path's hot table, trades, loses what no query needs and what an
-- ever-growing history made dearer (issue 18; costs measured in
-- bench/RESULTS.md, section 12):
--
-- * Idempotency keys of orders move to a table of their own, kept for a
--   documented retention (24 hours, market/engine.KeyRetention) and pruned
--   by the engine, instead of a unique index on trades that grew with every
--   keyed order ever placed (millions of entries in the benchmark, and
--   throughput fell within a run as it grew).
-- * trades_account_idx: no query reads trades by account (positions and the
--   ledger answer "what does this trader hold and pay").
-- * The foreign keys of trades: each costs a trigger and a row lookup per
--   trade. The engine is the only writer (docs/architecture.md): a trade's
--   market is the book that priced it, its account the authenticated caller,
--   and accounts and markets are never deleted. The ledger dropped its
--   foreign keys for the same reason (0002).

CREATE TABLE order_keys (
    account_id bigint NOT NULL,
    key        text NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 200),
    market_id  bigint NOT NULL,
    seq        bigint NOT NULL,
    at         timestamptz NOT NULL, -- the order's time: the retention counts from it
    PRIMARY KEY (account_id, key)
);
-- Rows arrive in time order, so a BRIN index finds the expired ones for
-- almost nothing per insert.
CREATE INDEX order_keys_at_idx ON order_keys USING brin (at);

-- Keys still within the retention keep working across the upgrade.
INSERT INTO order_keys (account_id, key, market_id, seq, at)
SELECT account_id, idempotency_key, market_id, seq, at FROM trades
WHERE idempotency_key IS NOT NULL AND at > now() - interval '24 hours'
ON CONFLICT DO NOTHING;

DROP INDEX trades_idempotency_idx;
DROP INDEX trades_account_idx;
ALTER TABLE trades DROP CONSTRAINT trades_market_id_fkey, DROP CONSTRAINT trades_account_id_fkey;
