-- The regular-expression CHECKs on ledger_entries.kind and .ref cost about
-- 17 µs per row (measured: 100,000 entries insert in 2.1 s with them, 0.44 s
-- without), and every ledger append holds the chain's head lock, so that time
-- is every writer's. settlement/ledger validates kind and ref against the
-- same alphabets before it writes (validate.go), and it is the only writer;
-- the append-only triggers and the hash chain cover what comes later.
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_kind_check,
    DROP CONSTRAINT ledger_entries_ref_check;
