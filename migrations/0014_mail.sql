-- Email: each account's address (confirmed by a one-time link whose token is
-- kept only as its SHA-256), the categories its owner does not want, and the
-- delivery state of the notification outbox.
CREATE TABLE account_emails (
    account_id       bigint PRIMARY KEY REFERENCES accounts (id),
    address          text NOT NULL CHECK (length(address) BETWEEN 3 AND 254),
    confirmed_at     timestamptz,
    token_hash       bytea,
    token_expires_at timestamptz,
    muted            text[] NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX account_emails_token_idx ON account_emails (token_hash) WHERE token_hash IS NOT NULL;

-- delivery: NULL until the mail worker decides; 'sent' (sent_at set),
-- 'kept' (stays in the app: no confirmed address, a muted category, too old)
-- or 'failed' (refused for good, or out of attempts; last_error says why).
ALTER TABLE notifications
    ADD COLUMN link            text,
    ADD COLUMN delivery        text CHECK (delivery IN ('sent', 'kept', 'failed')),
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN last_error      text;
-- What was written before mail existed stays in the app.
UPDATE notifications SET delivery = 'kept';
CREATE INDEX notifications_undelivered_idx ON notifications (id) WHERE delivery IS NULL;
