package engine

import (
	"errors"
	"sync"
)

// The journal can keep two transactions in flight (Options.InFlight = 2):
// while one holds its rows and the ledger's head and appends and flushes,
// the next writes its trades and positions on a connection of its own, and
// waits on the first's locks only for what they share (a hot market's row,
// the head). A book hands over its next batch, priced on top of the one in
// flight, once that one carries at least Options.OverlapFrom orders, its
// transaction holds its locks (batch.locked) and the next has gathered at
// least half as many orders, without waiting for its commit (book.flush).
//
// What keeps it correct:
//   - A market row is written only at the seq its batch was priced after
//     (journalMarkets), so a batch can never commit when the
//     one before it did not; it fails and is answered errBehind, and its book
//     prices its orders again on the committed state.
//   - The younger transaction starts only once the older holds its locks
//     (its first statement returned), so the younger waits on the older and
//     never the other way round.
//   - A retry (after an overdraft, a stored key, a fenced market) waits until
//     no other attempt is under way: the older's retry for the younger's
//     attempt to end (that attempt no longer waits on anything of the
//     older's, which rolled back), the younger's for the older to end.
//     Attempts that run together took their locks in that order, so the two
//     transactions cannot deadlock.
//   - COMMIT and the wallets' settling with the balances a transaction read
//     happen under one mutex, in commit order, so a later commit's balances
//     are never overwritten by an earlier one's. A commit in two round trips
//     (ledger.Session) sends COMMIT with its append, so it takes the mutex
//     once its first round trip returned: it then holds the ledger's head,
//     which the younger transaction waits for, so the older always takes
//     the mutex first. (A Session does not retry a post once it reported
//     the locks held, which would take the head again with the mutex held.)

// errBehind answers a batch whose market row was not at the seq the batch
// was priced after: the batch before it, in the other transaction, did not
// commit. Its book prices its orders again on the committed state.
var errBehind = errors.New("the batch before it did not commit")

// job is one group of batches the journal commits in one transaction
// (retried without the batches a refusal drops).
type job struct {
	bs   []*batch
	lane int // the connection it commits on (journal.conns)
	// Under pipeline.mu:
	attempts  int  // attempts begun
	inAttempt bool // an attempt is under way
	locked    bool // the attempt under way holds its locks (its first statement returned)
	told      bool // its batches' locked channels are closed
}

// pipeline orders the journal's jobs; with one lane it never waits.
type pipeline struct {
	mu    sync.Mutex
	cond  *sync.Cond
	jobs  []*job // started and not ended, oldest first
	lanes []bool // in use
	// commit serialises COMMIT and the wallets' settling (see above).
	commit sync.Mutex
}

func newPipeline(lanes int) *pipeline {
	p := &pipeline{lanes: make([]bool, lanes)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// slot waits until a new job may gather batches: a lane is free, and the
// youngest job, if any, holds its locks (a job gathered earlier would only
// wait for them with fewer batches than it could carry). It returns the lane.
func (p *pipeline) slot() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if lane := p.freeLane(); lane >= 0 {
			if n := len(p.jobs); n == 0 || p.jobs[n-1].inAttempt && p.jobs[n-1].locked {
				return lane
			}
		}
		p.cond.Wait()
	}
}

func (p *pipeline) freeLane() int {
	for i, used := range p.lanes {
		if !used {
			return i
		}
	}
	return -1
}

// add starts a job of bs on lane.
func (p *pipeline) add(bs []*batch, lane int) *job {
	p.mu.Lock()
	defer p.mu.Unlock()
	jb := &job{bs: bs, lane: lane}
	p.lanes[lane] = true
	p.jobs = append(p.jobs, jb)
	return jb
}

// neighbours returns the jobs started just before and after jb (nil if
// none). Under mu.
func (p *pipeline) neighbours(jb *job) (older, younger *job) {
	for i, o := range p.jobs {
		if o == jb {
			if i > 0 {
				older = p.jobs[i-1]
			}
			if i+1 < len(p.jobs) {
				younger = p.jobs[i+1]
			}
			return older, younger
		}
	}
	return nil, nil
}

// beginAttempt waits until jb may begin an attempt (see the rules above).
func (p *pipeline) beginAttempt(jb *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		older, younger := p.neighbours(jb)
		var ok bool
		if jb.attempts == 0 {
			ok = older == nil || older.inAttempt && older.locked
		} else {
			ok = older == nil && (younger == nil || !younger.inAttempt)
		}
		if ok {
			break
		}
		p.cond.Wait()
	}
	jb.attempts++
	jb.inAttempt, jb.locked = true, false
}

// lockedAttempt records that jb's attempt holds its locks, and tells its
// batches' books the first time: a book hands over its next batch then.
func (p *pipeline) lockedAttempt(jb *job) {
	p.mu.Lock()
	jb.locked = true
	p.tell(jb)
	p.mu.Unlock()
	p.cond.Broadcast()
}

// tell closes jb's batches' locked channels, once. Under mu.
func (p *pipeline) tell(jb *job) {
	if !jb.told {
		jb.told = true
		for _, b := range jb.bs {
			close(b.locked)
		}
	}
}

// endAttempt records that jb's attempt ended (committed or rolled back).
func (p *pipeline) endAttempt(jb *job) {
	p.mu.Lock()
	jb.inAttempt, jb.locked = false, false
	p.mu.Unlock()
	p.cond.Broadcast()
}

// waitOlder waits until every job started before jb has ended: their
// outcome decides which of jb's batches can still commit.
func (p *pipeline) waitOlder(jb *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if older, _ := p.neighbours(jb); older == nil {
			return
		}
		p.cond.Wait()
	}
}

// end removes jb and frees its lane.
func (p *pipeline) end(jb *job) {
	p.mu.Lock()
	for i, o := range p.jobs {
		if o == jb {
			p.jobs = append(p.jobs[:i], p.jobs[i+1:]...)
			break
		}
	}
	p.lanes[jb.lane] = false
	p.tell(jb)
	p.mu.Unlock()
	p.cond.Broadcast()
}
