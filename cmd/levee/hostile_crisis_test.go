package main

import (
	"sync"
	"testing"
	"time"
)

// TestSimultaneousLastSignaturesEndTheEmergency has the two signatures that
// reach the petition threshold (10 in the demo city) commit together: both
// are held, after reading the count, until the other has read it too. One
// of them must end the emergency (issue 13 §4).
func TestSimultaneousLastSignaturesEndTheEmergency(t *testing.T) {
	m, _, _ := MustRunMainClock(t, func(c *Config) { c.Demo = true })
	anon := anonymous(t, m)
	sam := demoClient(t, m, "sam")
	st, e := sam.do("POST", "/api/v1/emergencies", `{"reason":"Storm surge","districts":["north"],"duration":"3d","cap":"500"}`)
	if st != 201 {
		t.Fatalf("declare: %d %v", st, e)
	}
	eid := e["id"].(string)
	residents := demoJurors()
	for i := range 8 {
		if st, r := demoClient(t, m, residents[i]).do("POST", "/api/v1/emergencies/"+eid+"/petition", `{}`); st != 200 {
			t.Fatalf("petition %d: %d %v", i, st, r)
		}
	}
	last := []*client{demoClient(t, m, residents[8]), demoClient(t, m, residents[9])}
	var ids []int64
	for _, n := range residents[8:10] {
		id, err := m.Accounts.IDByName(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// An uncommitted signature of each holds the real ones at their insert.
	hold := m.DB.MustBegin()
	defer hold.Rollback()
	for _, id := range ids {
		hold.MustExec(`INSERT INTO emergency_petitions (emergency_id, account_id, at) VALUES ($1, $2, now())`, eid, id)
	}
	var wg sync.WaitGroup
	for _, c := range last {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, r := c.do("POST", "/api/v1/emergencies/"+eid+"/petition", `{}`); st != 200 {
				t.Errorf("last petition: %d %v", st, r)
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		var n int
		m.DB.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last signatures never met: %d waiting", n)
		}
	}
	hold.Rollback()
	wg.Wait()
	if _, e := anon.do("GET", "/api/v1/emergencies/"+eid, ""); e["petitioners"] != 10.0 || e["end_reason"] != "petition" || e["active"] != false {
		t.Fatalf("10 signatures of 10 did not end it: %v", e)
	}
}
