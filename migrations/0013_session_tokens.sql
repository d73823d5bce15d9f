-- A browser session opened with an API token lives only as long as that
-- token: revoking the token (or replacing LEVEE_ADMIN_TOKEN) ends it.
-- Sessions opened with a password have no token.
ALTER TABLE sessions ADD COLUMN token_id bigint REFERENCES api_tokens (id) ON DELETE CASCADE;
CREATE INDEX sessions_token_idx ON sessions (token_id) WHERE token_id IS NOT NULL;
