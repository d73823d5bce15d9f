-- Residents' privacy (docs/privacy.md): pseudonymous public names for
-- people's ledger accounts, the private epoch of the hash chain, and leaving
-- the city.

-- public is the name an account shows in the hash chain and the export from
-- the private epoch on: "cash:p<20 hex>" for a person's cash, "exit:p…" for
-- what the treasury owes a person who left; NULL means the key itself
-- (organisations, the treasury, markets, budget lines, escrow...). Hashes
-- commit to it, so once set it never changes.
ALTER TABLE ledger_accounts ADD COLUMN public text UNIQUE CHECK (public ~ '^[a-z0-9_.:-]{1,100}$');
CREATE FUNCTION ledger_keep_public() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.public IS NOT NULL AND NEW.public IS DISTINCT FROM OLD.public THEN
        RAISE EXCEPTION 'the public name of % is fixed: the hash chain commits to it', OLD.key
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_accounts_keep_public BEFORE UPDATE OF public ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_keep_public();

-- Every person's cash account gets a pseudonym: 80 bits from PostgreSQL's
-- strong random source (gen_random_uuid), not derived from the id.
UPDATE ledger_accounts l
SET public = 'cash:p' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8)
                      || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
FROM accounts a
WHERE a.kind = 'person' AND l.key = 'cash:' || a.id;

-- private_from is the first seq hashed and exported under public names. A
-- ledger with no entries starts private; one with entries gets its epoch
-- change appended by ledger.BeginPrivateEpoch when the node next starts
-- (the chain cannot be rewritten, so the change is two more entries).
ALTER TABLE ledger_head ADD COLUMN private_from bigint CHECK (private_from > 0);
UPDATE ledger_head SET private_from = 1 WHERE seq = 0;

-- Leaving: exiting_at when the person asked (orders refused from then on),
-- exited_at when the account closed for good.
ALTER TABLE accounts
    ADD COLUMN exiting_at timestamptz,
    ADD COLUMN exited_at  timestamptz;
