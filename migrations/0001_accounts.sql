-- Districts, accounts (people and organisations), roles, credentials.

CREATE TABLE node (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id), -- one row: this city
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO node (name) VALUES ('Levee');

CREATE TABLE districts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    kind          text NOT NULL CHECK (kind IN ('person', 'organisation')),
    roles         text[] NOT NULL CHECK (roles <@ ARRAY['resident','contractor','treasurer','steward','admin']::text[]),
    district_id   bigint REFERENCES districts (id),
    password_hash text,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- every resident belongs to a district
    CHECK (NOT ('resident' = ANY (roles)) OR district_id IS NOT NULL)
);
CREATE INDEX accounts_district_idx ON accounts (district_id);

-- Members of contractor organisations.
CREATE TABLE organisation_members (
    organisation_id bigint NOT NULL REFERENCES accounts (id),
    member_id       bigint NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (organisation_id, member_id)
);
CREATE INDEX organisation_members_member_idx ON organisation_members (member_id);

-- Bearer tokens for programs. Only a SHA-256 of the token is kept: tokens
-- carry 256 random bits, so a slow hash adds nothing and would tax every call.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id),
    token_hash   bytea NOT NULL UNIQUE,
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_account_idx ON api_tokens (account_id);

-- Browser sessions (cookie holds the token; we keep its hash) with the CSRF
-- token that every state-changing request from the UI must echo.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_account_idx ON sessions (account_id);

-- Who did what with admin powers.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor_id   bigint REFERENCES accounts (id),
    action     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'
);

-- Small facts the node keeps about itself (e.g. that the demo city was seeded).
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
