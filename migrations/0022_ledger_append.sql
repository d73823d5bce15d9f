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
    n        int := cardinality(p_kind);
    m        int := cardinality(p_account);
    v_seq    bigint;
    v_hash   bytea;
    v_from   bigint;
    v_keys   text[];
    v_names  text[];
    v_canon  text;
    v_sum    bigint;
    v_seqs   bigint[] := array_fill(0::bigint, ARRAY[n]);
    v_prevs  bytea[] := array_fill(NULL::bytea, ARRAY[n]);
    v_hashes bytea[] := array_fill(NULL::bytea, ARRAY[n]);
    v_idx    int[] := array_fill(0, ARRAY[m]);
    v_bad    record;
    i        int;
    j        int := 1;
    k        int;
BEGIN
    IF n = 0 OR cardinality(p_at) <> n OR cardinality(p_micros) <> n OR cardinality(p_ref) <> n
       OR cardinality(p_entry) <> m OR cardinality(p_amount) <> m THEN
        RAISE EXCEPTION 'ledger_append: arrays of unequal lengths or no entry' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The lock order of every writer (docs/locks.md): the head, then the
    -- accounts in key order.
    SELECT h.seq, h.hash, coalesce(h.private_from, 0) INTO v_seq, v_hash, v_from FROM ledger_head h FOR UPDATE;
    v_keys := ARRAY(SELECT DISTINCT u FROM unnest(p_account || coalesce(p_read, '{}')) u ORDER BY u);
    PERFORM 1 FROM ledger_accounts a WHERE a.key = ANY (v_keys) ORDER BY a.key FOR UPDATE;
    SELECT u INTO v_bad FROM unnest(v_keys) u WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.key = u) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'no ledger account %', v_bad.u USING ERRCODE = 'foreign_key_violation', DETAIL = v_bad.u;
    END IF;

    -- Funds, entry by entry: the balance after each whole entry.
    SELECT r.account, r.bal, r.may_go_negative INTO v_bad FROM (
        SELECT p.account, p.e, a.may_go_negative,
               a.balance + sum(p.amount) OVER (PARTITION BY p.account ORDER BY p.e) * 0.000001 AS bal
        FROM unnest(p_entry, p_account, p_amount::numeric[]) AS p (e, account, amount)
        JOIN ledger_accounts a ON a.key = p.account
    ) r
    WHERE (r.bal < 0 AND NOT r.may_go_negative) OR abs(r.bal) > 1000000000000
    ORDER BY r.e LIMIT 1;
    IF FOUND THEN
        IF v_bad.bal < 0 AND NOT v_bad.may_go_negative THEN
            RAISE EXCEPTION 'insufficient funds in %', v_bad.account
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_no_overdraft', DETAIL = v_bad.account;
        END IF;
        RAISE EXCEPTION 'the balance of % would pass the bound on money', v_bad.account
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_money_bound', DETAIL = v_bad.account;
    END IF;

    -- Names in the chain: from the private epoch on, accounts' public names.
    IF v_from > 0 AND v_seq + n >= v_from THEN
        v_names := ARRAY(SELECT coalesce(a.public, a.key) FROM unnest(p_account) WITH ORDINALITY AS u (key, o)
                         JOIN ledger_accounts a ON a.key = u.key ORDER BY u.o);
    END IF;

    -- The chain, in order (ledger.Entry.appendCanonical).
    FOR i IN 1 .. n LOOP
        v_seq := v_seq + 1;
        v_canon := E'levee-ledger-v1\nseq=' || v_seq || E'\nat=' || p_micros[i] || E'\nkind=' || p_kind[i]
                   || E'\nref=' || p_ref[i] || E'\n';
        v_sum := 0;
        k := 0;
        WHILE j <= m AND p_entry[j] = i LOOP
            v_canon := v_canon || CASE WHEN v_from > 0 AND v_seq >= v_from THEN v_names[j] ELSE p_account[j] END
                       || ' ' || round(p_amount[j] * 0.000001, 6) || E'\n';
            v_sum := v_sum + p_amount[j];
            v_idx[j] := k;
            k := k + 1;
            j := j + 1;
        END LOOP;
        IF k = 0 OR v_sum <> 0 THEN
            RAISE EXCEPTION 'ledger_append: entry % has no postings or they do not balance', i USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_prevs[i] := v_hash;
        v_hash := sha256(v_hash || convert_to(v_canon, 'UTF8'));
        v_seqs[i] := v_seq;
        v_hashes[i] := v_hash;
    END LOOP;
    IF j <> m + 1 THEN
        RAISE EXCEPTION 'ledger_append: postings out of entry order' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO ledger_entries (seq, at, kind, ref, prev_hash, hash)
    SELECT * FROM unnest(v_seqs, p_at, p_kind, p_ref, v_prevs, v_hashes);
    INSERT INTO ledger_postings (entry_seq, idx, account, amount)
    SELECT v_seqs[e], x, a, amt * 0.000001 FROM unnest(p_entry, v_idx, p_account, p_amount) AS u (e, x, a, amt);
    UPDATE ledger_accounts a SET balance = a.balance + d.delta * 0.000001
    FROM (SELECT u.a, sum(u.amt) AS delta FROM unnest(p_account, p_amount::numeric[]) AS u (a, amt) GROUP BY u.a) d
    WHERE a.key = d.a AND d.delta <> 0;
    UPDATE ledger_head SET seq = v_seq, hash = v_hash;

    RETURN QUERY SELECT a.key, (a.balance * 1000000)::bigint FROM ledger_accounts a WHERE a.key = ANY (v_keys);
END;
$$;
