package federation

import (
	"encoding/json"
	"testing"
)

// FuzzWireStatement feeds the body of POST /api/v1/federation/statements:
// whatever arrives, reading it never panics, and a statement it accepts
// verifies and round-trips to the same hash.
func FuzzWireStatement(f *testing.F) {
	st, _ := Sign(exampleKey(), "vote", exampleAt, map[string]any{"approve": true, "proposal": "ab"})
	good, _ := json.Marshal(st.Wire())
	f.Add(good)
	f.Add([]byte(`{"signer":"zz","kind":"vote","at":1,"payload":"{}","signature":""}`))
	f.Add([]byte(`{"signer":"` + st.Wire().Signer + `","kind":"vote\nat=1","at":-5,"payload":"\u0000","signature":"00"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var w Wire
		if json.Unmarshal(body, &w) != nil {
			return
		}
		s, err := w.Statement()
		if err != nil {
			return
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("accepted a statement that does not verify: %v", err)
		}
		if w.Hash != "" && w.Hash != s.HashHex() {
			t.Fatalf("accepted a wrong hash")
		}
		back, err := s.Wire().Statement()
		if err != nil || back.HashHex() != s.HashHex() {
			t.Fatalf("round trip: %v", err)
		}
	})
}
