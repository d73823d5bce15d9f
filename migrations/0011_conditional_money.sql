-- Conditional money (docs/lmsr.md, "Voids"). A conditional market (every
-- decision market of a tender) keeps the cash a trader puts into it bound to
-- it: a sale credits the trader's balance inside the market, usable only
-- for buying there, until the market resolves (released to cash) or is
-- voided (each trader gets back exactly what they put in).
ALTER TABLE markets ADD COLUMN conditional boolean NOT NULL DEFAULT false;
UPDATE markets SET conditional = true WHERE funded_by <> 'treasury';

-- A trader's money in a conditional market: put_in is the cash they moved
-- in (never decreases before settlement), held what sales have credited
-- them and buys have not spent yet. Held money sits in the ledger account
-- market:<id>:held, whose balance is the sum of held.
CREATE TABLE market_stakes (
    market_id  bigint NOT NULL REFERENCES markets (id),
    account_id bigint NOT NULL REFERENCES accounts (id),
    put_in     numeric(20,6) NOT NULL DEFAULT 0 CHECK (put_in >= 0),
    held       numeric(20,6) NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (market_id, account_id)
);

INSERT INTO ledger_accounts (key, kind)
SELECT 'market:' || id || ':held', 'market_held' FROM markets WHERE conditional
ON CONFLICT (key) DO NOTHING;

-- The markets tied to a case: their traders may not sit on its jury, and
-- from seating until settlement its jurors and parties (whom the draw
-- leaves out) may not trade in them.
CREATE TABLE case_markets (
    case_id   bigint NOT NULL REFERENCES cases (id),
    market_id bigint NOT NULL REFERENCES markets (id),
    PRIMARY KEY (case_id, market_id)
);
CREATE INDEX case_markets_market_idx ON case_markets (market_id);

-- Cases opened before this migration: a market case is tied to its market,
-- a milestone case to every decision market of the contract's tender.
INSERT INTO case_markets (case_id, market_id)
SELECT c.id, substr(c.subject, 8)::bigint FROM cases c WHERE c.kind = 'market'
UNION
SELECT c.id, b.market_id FROM cases c
JOIN contracts k ON k.id = split_part(substr(c.subject, 11), '/', 1)::bigint
JOIN bids b ON b.tender_id = k.tender_id AND b.market_id IS NOT NULL
WHERE c.kind = 'milestone'
ON CONFLICT DO NOTHING;
