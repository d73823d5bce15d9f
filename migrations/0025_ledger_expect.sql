-- ledger_expect refuses a statement whose assumptions about the ledger do not
-- hold (issue 18). A ledger.Session that remembers what its last commit left
-- in the ledger (the head, and the balances and public names of the accounts
-- it posted to) computes the next append from that memory and sends it in the
-- same round trip as BEGIN, the caller's writes and COMMIT; the append's
-- statement checks, under the head's lock, that the head and every account
-- it posts to are still as remembered, and calls this with the answer. A
-- refusal aborts the transaction before COMMIT, so nothing of it is written,
-- and the Session then reads the ledger and appends in two round trips.
--
-- The SQLSTATE is Levee's own ('LV' is no class PostgreSQL uses), so that no
-- other failure can pass for it.
CREATE FUNCTION ledger_expect(ok boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'the ledger changed since this session last wrote it' USING ERRCODE = 'LV001';
    END IF;
END;
$$;
