-- The CHECKs left on the tables every journal commit writes become domains
-- (issue 18), or, where a rule spans two columns, one CHECK per table.
--
-- PostgreSQL builds a table's CHECK constraints from their stored text and
-- plans them for every statement that writes the table (ExecRelCheck:
-- stringToNode, then expression_planner), however few rows it writes. A
-- commit of one order writes eight tables in two statements, and perf on
-- PostgreSQL put ExecConstraints at 15% of its CPU for such a commit (of it,
-- stringToNode 8%). A domain's constraints are parsed and planned once per
-- connection (the type cache) and only evaluated per row, so the same rules
-- hold for less: ExecConstraints fell to 6% (stringToNode 2.5%), and
-- BenchmarkDurableOrders with one trader took 0.96x the time per order and
-- 0.95x PostgreSQL's CPU against the CHECKs put back (six rounds alternated
-- on a noisy machine; with every CHECK gone, 0.82x and 0.80x).
--
-- Not made domains: the two rules that span columns (no overdraft unless
-- the account may go negative; as many quantities as outcomes), each now
-- the table's only CHECK, and the lengths of the hashes: lib/pq sends a
-- []byte argument as text only when PostgreSQL says the parameter is bytea,
-- and a parameter written into a domain column is of the domain's type.
-- ledger_entries' and ledger_head's CHECKs are merged into one each.
--
-- The domains are created without their constraints, the columns take
-- them (binary coercible: no table is rewritten, no index rebuilt), and the
-- constraints are added after: ALTER DOMAIN checks the rows already stored
-- with one scan. The rules are those of the CHECKs they replace, to the
-- letter; a violation is still SQLSTATE 23514, named after the domain's
-- constraint. Keep 1000000000000 equal to levee.MaxMoney (0012).
CREATE DOMAIN levee_money AS numeric(20,6);
CREATE DOMAIN levee_posting AS numeric(20,6);
CREATE DOMAIN levee_volume AS numeric(20,6);
CREATE DOMAIN levee_positive AS numeric(20,6);
CREATE DOMAIN levee_nonnegative AS numeric(20,6);
CREATE DOMAIN levee_side AS text;
CREATE DOMAIN levee_key AS text;
CREATE DOMAIN levee_index AS smallint;

ALTER TABLE ledger_accounts
    DROP CONSTRAINT ledger_accounts_money_bound,
    ALTER COLUMN balance TYPE levee_money;
ALTER TABLE ledger_postings
    DROP CONSTRAINT ledger_postings_amount_check,
    DROP CONSTRAINT ledger_postings_money_bound,
    DROP CONSTRAINT ledger_postings_idx_check,
    ALTER COLUMN amount TYPE levee_posting,
    ALTER COLUMN idx TYPE levee_index;
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_idempotency_key_check,
    DROP CONSTRAINT ledger_entries_seq_check,
    DROP CONSTRAINT ledger_entries_prev_hash_check,
    DROP CONSTRAINT ledger_entries_hash_check,
    ALTER COLUMN idempotency_key TYPE levee_key,
    ADD CONSTRAINT ledger_entries_shape CHECK (seq > 0 AND octet_length(prev_hash) = 32 AND octet_length(hash) = 32);
ALTER TABLE ledger_head
    DROP CONSTRAINT ledger_head_seq_check,
    DROP CONSTRAINT ledger_head_hash_check,
    ADD CONSTRAINT ledger_head_shape CHECK (seq >= 0 AND octet_length(hash) = 32);
ALTER TABLE markets
    DROP CONSTRAINT markets_volume_bound,
    ALTER COLUMN volume TYPE levee_volume;
ALTER TABLE trades
    DROP CONSTRAINT trades_side_check,
    DROP CONSTRAINT trades_shares_check,
    DROP CONSTRAINT trades_amount_check,
    ALTER COLUMN side TYPE levee_side,
    ALTER COLUMN shares TYPE levee_positive,
    ALTER COLUMN amount TYPE levee_nonnegative;
ALTER TABLE positions
    DROP CONSTRAINT positions_shares_check,
    ALTER COLUMN shares TYPE levee_nonnegative;
ALTER TABLE market_stakes
    DROP CONSTRAINT market_stakes_put_in_check,
    DROP CONSTRAINT market_stakes_held_check,
    ALTER COLUMN put_in TYPE levee_nonnegative,
    ALTER COLUMN held TYPE levee_nonnegative;
ALTER TABLE order_keys
    DROP CONSTRAINT order_keys_key_check,
    ALTER COLUMN key TYPE levee_key;

ALTER DOMAIN levee_money ADD CONSTRAINT money_bound CHECK (VALUE BETWEEN -1000000000000 AND 1000000000000);
ALTER DOMAIN levee_posting ADD CONSTRAINT posting_not_zero CHECK (VALUE <> 0);
ALTER DOMAIN levee_posting ADD CONSTRAINT posting_money_bound CHECK (VALUE BETWEEN -1000000000000 AND 1000000000000);
ALTER DOMAIN levee_volume ADD CONSTRAINT volume_bound CHECK (VALUE <= 1000000000000);
ALTER DOMAIN levee_positive ADD CONSTRAINT positive CHECK (VALUE > 0);
ALTER DOMAIN levee_nonnegative ADD CONSTRAINT nonnegative CHECK (VALUE >= 0);
ALTER DOMAIN levee_side ADD CONSTRAINT side CHECK (VALUE IN ('buy', 'sell'));
ALTER DOMAIN levee_key ADD CONSTRAINT key_length CHECK (octet_length(VALUE) BETWEEN 1 AND 200);
ALTER DOMAIN levee_index ADD CONSTRAINT index_nonnegative CHECK (VALUE >= 0);
