-- Several Levee instances of one city (docs/cluster.md). Each market's book
-- runs on one instance at a time, the holder of its lease row; epoch grows by
-- one at every acquisition and is copied into markets.epoch in the same
-- transaction, so that the journal's update of a market row (which must match
-- the epoch its book holds) fences a stale owner inside its own commit.
ALTER TABLE markets ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

CREATE TABLE market_leases (
    market_id  bigint PRIMARY KEY REFERENCES markets (id),
    owner      text NOT NULL CHECK (length(owner) BETWEEN 1 AND 100),
    epoch      bigint NOT NULL CHECK (epoch > 0),
    expires_at timestamptz NOT NULL,
    -- released: its holder gave it up (idle, rebalanced, shut down); an
    -- expired lease not released is an instance that died or stalled
    -- holding it, whose market the others take over at once.
    released   boolean NOT NULL DEFAULT false
);
CREATE INDEX market_leases_orphaned_idx ON market_leases (expires_at) WHERE NOT released;
CREATE INDEX market_leases_owner_idx ON market_leases (owner);

-- The instances alive now (a row renewed with the leases): least-loaded
-- placement of markets counts leases among these only.
CREATE TABLE cluster_nodes (
    node       text PRIMARY KEY CHECK (length(node) BETWEEN 1 AND 100),
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
