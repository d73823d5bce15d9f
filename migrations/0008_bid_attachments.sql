-- Files attached to a bid (drawings, certificates, a priced schedule). They
-- are as sealed as the bid: readable only through the bid's own visibility
-- rule (contracting/attachments.go), so nobody but the bidder sees them
-- before the window closes.
CREATE TABLE bid_attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bid_id       bigint NOT NULL REFERENCES bids (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    content_type text NOT NULL,
    size         integer NOT NULL CHECK (size > 0),
    sha256       bytea NOT NULL CHECK (octet_length(sha256) = 32),
    data         bytea NOT NULL,
    uploaded_by  bigint NOT NULL REFERENCES accounts (id),
    uploaded_at  timestamptz NOT NULL
);
CREATE INDEX bid_attachments_bid_idx ON bid_attachments (bid_id, id);
