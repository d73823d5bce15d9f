package live

import "sync"

// inbox is a client's queue of published groups, bounded by
// Options.SendBuffer events. It replaced a buffered channel: with 10,000
// subscribers every publish put an item into, and a writer took it out of,
// a channel's buffer nobody had touched since the last event, a cache miss
// on each side for every subscriber (a seventh of the fan-out's CPU above
// the write syscall). The inbox's lock and first slots sit in the client
// beside the fields a delivery reads anyway.
type inbox struct {
	mu    sync.Mutex
	items []item // items[head:] wait, oldest first
	head  int
	msgs  int     // events in the waiting items: what the bound counts
	first [2]item // items' storage while at most two wait: a commit's group, and the next
}

// keepItems is the largest array an empty inbox keeps (512 bytes).
const keepItems = 32

// push appends it unless limit events already wait. A group is taken
// whole, so a large commit may pass the limit once; the next is refused.
func (q *inbox) push(it item, limit int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.msgs >= limit {
		return false
	}
	q.msgs += len(it.g.msgs)
	if q.items == nil {
		q.items = q.first[:0]
	}
	q.items = append(q.items, it)
	return true
}

// pop takes the oldest item.
func (q *inbox) pop() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return item{}, false
	}
	it := q.items[q.head]
	q.items[q.head] = item{}
	q.msgs -= len(it.g.msgs)
	q.head++
	if q.head == len(q.items) {
		// Empty: start again at the front of the same array, unless a
		// long burst grew it past what is worth keeping per client.
		q.head = 0
		q.items = q.items[:0]
		if cap(q.items) > keepItems {
			q.items = nil
		}
	}
	return it, true
}

// len is how many items (groups) wait.
func (q *inbox) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
