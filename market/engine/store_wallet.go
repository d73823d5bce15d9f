package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/ledger"
)

// wallets caches traders' cash so that a market's goroutine can check and
// reserve cash without a database round trip. The database stays the truth:
// a wallet holds the committed balance last read inside a journal
// transaction, plus the cash reserved by priced-but-uncommitted buys. Any
// other code that moves a trader's cash calls Invalidate after it commits;
// if it forgets, the ledger's balance >= 0 check still refuses the overdraft
// at commit and the affected markets reload.
type wallets struct {
	db     *sqlx.DB
	shards [64]walletShard
}

type walletShard struct {
	mu sync.Mutex
	m  map[int64]*wallet
}

type wallet struct {
	balance  levee.Micros // committed
	reserved levee.Micros // held for buys in flight
	stale    bool         // balance must be reread before use
}

func newWallets(db *sqlx.DB) *wallets {
	w := &wallets{db: db}
	for i := range w.shards {
		w.shards[i].m = map[int64]*wallet{}
	}
	return w
}

func (w *wallets) shard(account int64) *walletShard { return &w.shards[uint64(account)%64] }

// ensure loads the wallets of accounts not yet cached, in one query.
func (w *wallets) ensure(ctx context.Context, accounts []int64) error {
	var missing []string
	for _, a := range accounts {
		s := w.shard(a)
		s.mu.Lock()
		wl, ok := s.m[a]
		known := ok && !wl.stale // read under the lock: the journal settles wallets concurrently
		s.mu.Unlock()
		if !known {
			missing = append(missing, ledger.Cash(a))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	read, err := ledger.Balances(ctx, w.db, missing)
	if err != nil {
		return fmt.Errorf("load wallets: %w", err)
	}
	for key, balance := range read {
		k, _ := ledger.ParseKey(key)
		id := k.ID
		s := w.shard(id)
		s.mu.Lock()
		if wl, ok := s.m[id]; !ok {
			s.m[id] = &wallet{balance: balance}
		} else if wl.stale {
			wl.balance, wl.stale = balance, false
		}
		s.mu.Unlock()
	}
	return nil
}

// available is the cash an account can spend now (0 if unknown).
func (w *wallets) available(account int64) levee.Micros {
	s := w.shard(account)
	s.mu.Lock()
	defer s.mu.Unlock()
	if wl, ok := s.m[account]; ok && !wl.stale {
		return wl.balance - wl.reserved
	}
	return 0
}

// reserve holds amount for a buy, atomically with the check that it is there
// (another market may have reserved since available was read).
func (w *wallets) reserve(account int64, amount levee.Micros) bool {
	s := w.shard(account)
	s.mu.Lock()
	defer s.mu.Unlock()
	wl, ok := s.m[account]
	if !ok || wl.stale || wl.balance-wl.reserved < amount {
		return false
	}
	wl.reserved += amount
	return true
}

// release gives back a reservation that will not be committed.
func (w *wallets) release(account int64, amount levee.Micros) {
	s := w.shard(account)
	s.mu.Lock()
	if wl, ok := s.m[account]; ok {
		wl.reserved -= amount
	}
	s.mu.Unlock()
}

// settle records a commit: the reservations it consumed are released and the
// committed balance becomes what the transaction read back.
func (w *wallets) settle(account int64, consumed, balance levee.Micros) {
	s := w.shard(account)
	s.mu.Lock()
	if wl, ok := s.m[account]; ok {
		wl.reserved -= consumed
		wl.balance, wl.stale = balance, false
	}
	s.mu.Unlock()
}

// Invalidate forgets an account's cached balance; the next order reloads it.
// Reservations in flight are kept.
func (w *wallets) Invalidate(account int64) {
	s := w.shard(account)
	s.mu.Lock()
	if wl, ok := s.m[account]; ok {
		wl.stale = true
	}
	s.mu.Unlock()
}
