package live

import "testing"

func TestInboxKeepsOrderAndBound(t *testing.T) {
	var q inbox
	g := make([]*group, 100)
	for i := range g {
		g[i] = &group{msgs: make([]*message, 1)}
	}
	next := 0 // the next group pop must return
	pushed := 0
	for round := range 50 {
		n := 1 + round%7*9 // 1 to 55 items, past the inline slots and keepItems
		for range n {
			if !q.push(item{g: g[pushed%len(g)]}, 40) {
				if q.len() != 40 {
					t.Fatalf("push refused with %d waiting, limit 40", q.len())
				}
				continue
			}
			pushed++
		}
		for range 1 + round%3 { // leave some behind now and then
			it, ok := q.pop()
			if !ok {
				break
			}
			if it.g != g[next%len(g)] {
				t.Fatalf("round %d: popped out of order", round)
			}
			next++
		}
		if round%5 == 4 { // drain
			for {
				it, ok := q.pop()
				if !ok {
					break
				}
				if it.g != g[next%len(g)] {
					t.Fatalf("round %d: popped out of order while draining", round)
				}
				next++
			}
			if q.len() != 0 || cap(q.items) > keepItems {
				t.Fatalf("drained inbox: %d waiting, array of %d kept", q.len(), cap(q.items))
			}
		}
	}
	if next+q.len() != pushed {
		t.Fatalf("pushed %d, popped %d, %d waiting", pushed, next, q.len())
	}
}

// The bound counts events, not groups, and takes a group whole.
func TestInboxBoundCountsEvents(t *testing.T) {
	var q inbox
	commit := func(trades int) item { return item{g: &group{msgs: make([]*message, trades+1)}} }
	if !q.push(commit(9), 16) { // 10 events
		t.Fatal("refused a commit into an empty inbox")
	}
	if !q.push(commit(30), 16) { // 41: taken whole past the bound
		t.Fatal("refused a commit with 10 of 16 events waiting")
	}
	if q.push(commit(0), 16) {
		t.Fatal("took a quote with 41 of 16 events waiting")
	}
	q.pop()
	if q.push(commit(0), 16) {
		t.Fatal("took a quote with 31 of 16 events waiting")
	}
	q.pop()
	if !q.push(commit(0), 16) {
		t.Fatal("refused a quote into an emptied inbox")
	}
}

func TestInboxPushPopAllocateNothing(t *testing.T) {
	var q inbox
	it := item{g: &group{msgs: make([]*message, 2)}}
	allocs := testing.AllocsPerRun(1000, func() {
		q.push(it, 256)
		q.push(it, 256)
		q.pop()
		q.pop()
	})
	if allocs != 0 {
		t.Fatalf("a commit's push and pop allocate %.1f times", allocs)
	}
}
