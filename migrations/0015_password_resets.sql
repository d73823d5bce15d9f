-- One-time links with which a person sets a new password after an admin
-- reset theirs. Only the token's hash is kept; a link works once, until
-- expires_at, and a newer reset of the same account voids the older link.
CREATE TABLE password_resets (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    token_hash  bytea NOT NULL UNIQUE,
    created_by  bigint NOT NULL REFERENCES accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    voided_at   timestamptz
);
CREATE INDEX password_resets_account_idx ON password_resets (account_id);
