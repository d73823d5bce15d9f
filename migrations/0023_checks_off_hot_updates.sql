-- CHECK constraints off the rows every journal commit updates (issue 18).
--
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

-- The same for the two rows every journal commit updates besides the
-- traders': the market's (q, seq, volume) and the ledger's head (seq, hash).
-- PostgreSQL builds each CHECK of a table from its stored text for every
-- statement that writes it, and a commit of one order spent a fifth of
-- PostgreSQL's CPU in ExecConstraints (perf, issue 18). The CHECKs on
-- columns a commit never writes become triggers on the statements that do
-- write them; those on q, volume, seq and hash stay.
ALTER TABLE markets
    DROP CONSTRAINT markets_liquidity_check,
    DROP CONSTRAINT markets_subsidy_check,
    DROP CONSTRAINT markets_outcomes_check,
    DROP CONSTRAINT markets_question_check,
    DROP CONSTRAINT markets_status_check,
    DROP CONSTRAINT markets_check1;

CREATE FUNCTION markets_fixed_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (NEW.liquidity > 0) THEN
        RAISE EXCEPTION 'a market''s liquidity must be positive' USING ERRCODE = 'check_violation', CONSTRAINT = 'markets_liquidity_check';
    END IF;
    IF NOT (NEW.subsidy >= 0) THEN
        RAISE EXCEPTION 'a market''s subsidy cannot be negative' USING ERRCODE = 'check_violation', CONSTRAINT = 'markets_subsidy_check';
    END IF;
    IF NOT (cardinality(NEW.outcomes) BETWEEN 2 AND 100) THEN
        RAISE EXCEPTION 'a market has 2 to 100 outcomes' USING ERRCODE = 'check_violation', CONSTRAINT = 'markets_outcomes_check';
    END IF;
    IF NOT (length(NEW.question) BETWEEN 1 AND 500) THEN
        RAISE EXCEPTION 'a market''s question is 1 to 500 characters' USING ERRCODE = 'check_violation', CONSTRAINT = 'markets_question_check';
    END IF;
    IF NOT (NEW.status IN ('open', 'closed', 'resolved', 'void')) THEN
        RAISE EXCEPTION 'market status % is not open, closed, resolved or void', NEW.status USING ERRCODE = 'check_violation', CONSTRAINT = 'markets_status_check';
    END IF;
    IF (NEW.status = 'resolved') IS DISTINCT FROM (NEW.resolved_outcome IS NOT NULL) THEN
        RAISE EXCEPTION 'a market has a resolved outcome exactly when it is resolved' USING ERRCODE = 'check_violation', CONSTRAINT = 'markets_check1';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER markets_fixed BEFORE INSERT OR UPDATE OF liquidity, subsidy, outcomes, question, status, resolved_outcome ON markets
    FOR EACH ROW EXECUTE FUNCTION markets_fixed_check();

ALTER TABLE ledger_head
    DROP CONSTRAINT ledger_head_id_check,
    DROP CONSTRAINT ledger_head_private_from_check;

CREATE FUNCTION ledger_head_fixed_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.id THEN
        RAISE EXCEPTION 'the ledger has one head' USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_head_id_check';
    END IF;
    IF NEW.private_from <= 0 THEN
        RAISE EXCEPTION 'private_from is a seq, above 0' USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_head_private_from_check';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_head_fixed BEFORE INSERT OR UPDATE OF id, private_from ON ledger_head
    FOR EACH ROW EXECUTE FUNCTION ledger_head_fixed_check();
