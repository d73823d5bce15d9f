-- The one bound on money, levee.MaxMoney (money.go): no balance and no
-- posting beyond one trillion units either way. settlement/ledger refuses
-- such an entry with a 409 before it writes; these checks make the database
-- refuse what Go could not read back (levee.Micros.Scan accepts the same
-- bound), whoever writes. Keep the literal equal to levee.MaxMoney
-- (TestMoneyBoundMatchesSchema).
ALTER TABLE ledger_accounts
    ADD CONSTRAINT ledger_accounts_money_bound CHECK (balance BETWEEN -1000000000000 AND 1000000000000);
ALTER TABLE ledger_postings
    ADD CONSTRAINT ledger_postings_money_bound CHECK (amount BETWEEN -1000000000000 AND 1000000000000);
