-- PostgreSQL evaluates every CHECK constraint of a table on every UPDATE,
-- whichever columns the UPDATE sets. ledger_accounts had three regular
-- expressions among its CHECKs (key, kind, public), so every balance update,
-- one per trader per journal commit, ran three regex matches: perf on
-- PostgreSQL under BenchmarkDurableOrders (64 traders) put textregexeq at 30% of
-- PostgreSQL's CPU (issue 18; 0004 removed the same cost from ledger_entries).
-- The same rules now hold through a trigger that runs only when a row is
-- inserted or one of those columns is written; a balance update never sets
-- them. The errors keep the constraints' names and SQLSTATE (23514).
ALTER TABLE ledger_accounts
    DROP CONSTRAINT ledger_accounts_key_check,
    DROP CONSTRAINT ledger_accounts_kind_check,
    DROP CONSTRAINT ledger_accounts_public_check;

CREATE FUNCTION ledger_account_names_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key !~ '^[a-z0-9_.:-]{1,100}$' THEN
        RAISE EXCEPTION 'ledger account key % is not 1-100 of [a-z0-9_.:-]', NEW.key
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_key_check';
    END IF;
    IF NEW.kind !~ '^[a-z0-9_.:-]{1,64}$' THEN
        RAISE EXCEPTION 'ledger account kind % is not 1-64 of [a-z0-9_.:-]', NEW.kind
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_kind_check';
    END IF;
    IF NEW.public !~ '^[a-z0-9_.:-]{1,100}$' THEN
        RAISE EXCEPTION 'ledger account public name % is not 1-100 of [a-z0-9_.:-]', NEW.public
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_public_check';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_accounts_names BEFORE INSERT OR UPDATE OF key, kind, public ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_account_names_check();
