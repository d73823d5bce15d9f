package main

import (
	"fmt"
	"strings"
	"time"
)

// diagnose says, from the figures of this run, what limits the engine on
// one hot market, for the engine's owner. Every sentence is computed.
func diagnose(r *Report) []string {
	var out []string
	c := r.Durable.Closed
	if c == nil || c.OK == 0 {
		return nil
	}
	busy := c.CPUSelf + c.CPUPG
	if r.Machine.NProc > 0 && busy < 0.75*float64(r.Machine.NProc) {
		out = append(out, fmt.Sprintf("**Not CPU-bound.** In the closed loop this process (server and load generator) used %.2f cores and "+
			"PostgreSQL %.2f, %.2f of the machine's %d: the engine is waiting, not computing.", c.CPUSelf, c.CPUPG, busy, r.Machine.NProc))
	} else {
		out = append(out, fmt.Sprintf("**CPU-bound.** In the closed loop this process (server and load generator) used %.2f cores and "+
			"PostgreSQL %.2f of the machine's %d.", c.CPUSelf, c.CPUPG, r.Machine.NProc))
	}
	if cm := c.Commits; cm.Commits > 0 && cm.P50 > 0 {
		out = append(out, fmt.Sprintf("**The hot market waits on its journal commits.** It had %.0f orders per commit and a commit took %s "+
			"(p50; p99 %s); %.0f orders every %s is %s orders/s, against %s measured. An order that arrives during a commit waits for "+
			"it, then for its own: the p50 latency (%s) is about two commits.",
			cm.OrdersPerCommit, ms(cm.P50), ms(cm.P99), cm.OrdersPerCommit, ms(cm.P50), num(cm.OrdersPerCommit/cm.P50.Seconds()), num(c.Throughput), ms(c.P50)))
		if b := nearestBatch(r.Journal, cm.OrdersPerCommit); b != nil && b.Total > 0 && r.Journal.PerOrder > 0 && len(r.Journal.Batches) >= 3 {
			var parts []string
			for _, s := range b.Steps {
				if share := float64(s.Dur) / float64(b.Total); share >= 0.04 {
					parts = append(parts, fmt.Sprintf("%s %.0f%%", s.Name, 100*share))
				}
			}
			out = append(out, fmt.Sprintf("**Where a commit's time goes.** Measured alone (section 3b), a commit of %d orders takes %s, "+
				"under this load %s (p50): %s. Its cost grows by %s per order, so one market (one batch in flight) and the one "+
				"journal (one transaction at a time) cannot exceed about %s orders/s whatever the batch size; %s orders/s needs "+
				"that cost under %s per order, or commits that overlap.",
				b.Batch, ms(b.Total), ms(cm.P50), strings.Join(parts, ", "), us(r.Journal.PerOrder),
				num(float64(time.Second)/float64(max(r.Journal.PerOrder, 1))), num(targetDurable), us(time.Second/targetDurable)))
		}
	}
	if k := r.Durable.Keys; k != nil && k.OK > 0 {
		waits := "no waits for a connection"
		if k.PoolWaits > 0 {
			waits = fmt.Sprintf("%d waits for a connection during the step, %s each on average (%d without keys)", k.PoolWaits, ms(avgWait(*k)), c.PoolWaits)
		}
		out = append(out, fmt.Sprintf("**Idempotency keys.** With a key on every order the closed loop acknowledged %s orders/s "+
			"instead of %s (%+.0f%%); the server's %d-connection pool, which the journal shares with every request's queries, "+
			"saw %s.", num(k.Throughput), num(c.Throughput), 100*(k.Throughput/c.Throughput-1), poolSize, waits))
	}
	if p := r.Profile; len(p.Focus) > 0 {
		share := map[string]float64{}
		for _, s := range p.Focus {
			share[s.Name] = s.Percent
		}
		out = append(out, fmt.Sprintf("**This process's CPU** (profile below): HTTP serving %.0f%% of the samples (of which the order "+
			"handler %.0f%%), the load generator %.0f%%, the journal %.0f%% (ledger.PostBatch %.0f%%), the books %.0f%%, GC workers %.0f%%.",
			share["net/http.(*conn).serve"], share["levee/web.(*Server).placeOrder"], share["levee/bench/load.(*client).do"],
			share["levee/market/engine.(*journal).run"], share["levee/ledger.PostBatch"],
			share["levee/market/engine.(*book).run"], share["runtime.gcBgMarkWorker"]))
	}
	return out
}

// nearestBatch is the anatomy measurement whose batch size is closest to n.
func nearestBatch(j JournalAnatomy, n float64) *JournalTiming {
	var best *JournalTiming
	for i := range j.Batches {
		b := &j.Batches[i]
		if best == nil || abs(float64(b.Batch)-n) < abs(float64(best.Batch)-n) {
			best = b
		}
	}
	return best
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
