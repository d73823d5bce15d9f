-- ledger_append appends a batch of entries in one call: what ledger.PostBatch
-- does from Go in two statements (lock the head and the accounts and read
-- them; chain the hashes and write), for a caller that cannot spare the round
-- trips. The market journal runs it in the same statement as its own writes
-- (trades, positions, market rows), in autocommit, so a group commit is one
-- round trip instead of four (BEGIN, lock, append, COMMIT), and the head lock
-- is held for the function's work and the commit, never across the network.
--
-- The caller (ledger.Prepared.AppendWith) has validated the transfers in Go
-- (keys, kinds, refs, balanced postings, amounts in bounds) and passes no
-- idempotency keys. The canonical encoding below must match
-- ledger.Entry.appendCanonical byte for byte (docs/ledger.md); the ledger's
-- tests post the same batches both ways and compare the chains, and Verify
-- checks every hash in Go.
--
-- Arguments, one element per entry: at (the stored timestamptz, and the same
-- instant in Unix microseconds, which the hash covers), kind, ref. One per
-- posting, in entry order: the entry's index (1-based), account, amount in
-- micro-units. read: further accounts whose balances to return.
-- Returns the balance, in micro-units, of every account posted to or read,
-- after the batch; the caller's transaction (here: the statement) holds
-- their locks until it commits.
--
-- Refusals: check_violation (23514) with constraint
-- ledger_accounts_no_overdraft and the account's key as detail when an
-- entry would take an account that may not go negative below zero (checked
-- after each whole entry, in order, as PostBatch does); constraint
-- ledger_accounts_money_bound when a balance would pass ±MaxMoney;
-- foreign_key_violation (23503), detail the key, for an account that does
-- not exist; invalid_parameter_value (22023) for a malformed call.
CREATE FUNCTION ledger_append(p_at timestamptz[], p_micros bigint[], p_kind text[], p_ref text[],
                              p_entry int[], p_account text[], p_amount bigint[], p_read text[])
RETURNS TABLE (key text, balance bigint) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n          int := cardinality(p_kind);
    m          int := cardinality(p_account);
    v_seq      bigint;
    v_hash     bytea;
    v_from     bigint;
    v_missing  text;
    v_bad      text;
    v_overdraw boolean;
    v_wellformed boolean;
    v_canons   text[];
    v_keys     text[];
    v_bals     bigint[];
BEGIN
    IF n = 0 OR cardinality(p_at) IS DISTINCT FROM n OR cardinality(p_micros) IS DISTINCT FROM n
       OR cardinality(p_ref) IS DISTINCT FROM n OR cardinality(p_entry) IS DISTINCT FROM m
       OR cardinality(p_amount) IS DISTINCT FROM m THEN
        RAISE EXCEPTION 'ledger_append: arrays of unequal lengths or no entry' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The lock order of every writer (docs/locks.md): the head, then the
    -- accounts in key order.
    SELECT h.seq, h.hash, coalesce(h.private_from, 0) INTO v_seq, v_hash, v_from FROM ledger_head h FOR UPDATE;

    -- One statement locks and reads the accounts and, from what it read,
    -- finds a missing account, the first entry that overdraws one (the
    -- balance after each whole entry, in order, as PostBatch checks) and
    -- the entries' canonical encodings (ledger.Entry.appendCanonical; from
    -- the private epoch on, under the accounts' public names).
    WITH acc AS MATERIALIZED (
        SELECT a.key, a.balance, a.may_go_negative, coalesce(a.public, a.key) AS pub
        FROM ledger_accounts a WHERE a.key = ANY (p_account || coalesce(p_read, '{}')) ORDER BY a.key FOR UPDATE
    ), p AS MATERIALIZED (
        SELECT u.e, u.account, u.amount, u.o FROM unnest(p_entry, p_account, p_amount) WITH ORDINALITY AS u (e, account, amount, o)
    ), bad AS (
        SELECT r.account, r.bal < 0 AND NOT r.may_go_negative AS overdraw FROM (
            SELECT p.e, p.account, acc.may_go_negative,
                   acc.balance + sum(p.amount::numeric) OVER (PARTITION BY p.account ORDER BY p.e) * 0.000001 AS bal
            FROM p JOIN acc ON acc.key = p.account
        ) r
        WHERE (r.bal < 0 AND NOT r.may_go_negative) OR abs(r.bal) > 1000000000000
        ORDER BY r.e LIMIT 1
    ), entries AS (
        SELECT p.e, sum(p.amount) AS total, count(*) AS postings,
               E'levee-ledger-v1\nseq=' || (v_seq + p.e) || E'\nat=' || p_micros[p.e] || E'\nkind=' || p_kind[p.e]
               || E'\nref=' || p_ref[p.e] || E'\n'
               || string_agg(CASE WHEN v_from > 0 AND v_seq + p.e >= v_from THEN acc.pub ELSE p.account END
                             || ' ' || round(p.amount * 0.000001, 6) || E'\n', '' ORDER BY p.o) AS canon
        FROM p JOIN acc ON acc.key = p.account GROUP BY p.e
    )
    SELECT (SELECT min(x) FROM unnest(p_account || coalesce(p_read, '{}')) x WHERE NOT EXISTS (SELECT 1 FROM acc WHERE acc.key = x)),
           (SELECT account FROM bad), (SELECT overdraw FROM bad),
           (SELECT count(*) = n AND bool_and(total = 0) AND min(e) = 1 AND max(e) = n FROM entries)
               AND p_entry = ARRAY(SELECT x FROM unnest(p_entry) x ORDER BY x),
           (SELECT array_agg(canon ORDER BY e) FROM entries),
           (SELECT array_agg(acc.key) FROM acc), (SELECT array_agg((acc.balance * 1000000)::bigint) FROM acc)
    INTO v_missing, v_bad, v_overdraw, v_wellformed, v_canons, v_keys, v_bals;

    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'no ledger account %', v_missing USING ERRCODE = 'foreign_key_violation', DETAIL = v_missing;
    END IF;
    IF NOT v_wellformed THEN
        RAISE EXCEPTION 'ledger_append: an entry has no postings, or they do not balance, or are out of entry order'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_overdraw THEN
        RAISE EXCEPTION 'insufficient funds in %', v_bad
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_no_overdraft', DETAIL = v_bad;
    ELSIF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'the balance of % would pass the bound on money', v_bad
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_money_bound', DETAIL = v_bad;
    END IF;

    -- The chain, in order (a recursive query: a PL/pgSQL loop assigning
    -- array elements costs ten times as much), then the writes and the
    -- balances after them.
    RETURN QUERY
    WITH RECURSIVE chain (i, prev, hash) AS (
        SELECT 1, v_hash, sha256(v_hash || convert_to(v_canons[1], 'UTF8'))
        UNION ALL
        SELECT c.i + 1, c.hash, sha256(c.hash || convert_to(v_canons[c.i + 1], 'UTF8')) FROM chain c WHERE c.i < n
    ), e AS (
        INSERT INTO ledger_entries (seq, at, kind, ref, prev_hash, hash)
        SELECT v_seq + c.i, p_at[c.i], p_kind[c.i], p_ref[c.i], c.prev, c.hash FROM chain c
    ), po AS (
        INSERT INTO ledger_postings (entry_seq, idx, account, amount)
        SELECT v_seq + u.e, row_number() OVER (PARTITION BY u.e ORDER BY u.o) - 1, u.a, u.amt * 0.000001
        FROM unnest(p_entry, p_account, p_amount) WITH ORDINALITY AS u (e, a, amt, o)
    ), b AS (
        UPDATE ledger_accounts a SET balance = a.balance + d.delta * 0.000001
        FROM (SELECT u.a, sum(u.amt) AS delta FROM unnest(p_account, p_amount::numeric[]) AS u (a, amt) GROUP BY u.a) d
        WHERE a.key = d.a AND d.delta <> 0
        RETURNING a.key, (a.balance * 1000000)::bigint AS balance
    ), h AS (
        UPDATE ledger_head SET seq = v_seq + n, hash = (SELECT c.hash FROM chain c WHERE c.i = n)
    )
    SELECT b.key, b.balance FROM b
    UNION ALL
    SELECT r.k, r.bal FROM unnest(v_keys, v_bals) AS r (k, bal) WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.key = r.k);
END;
$$;
