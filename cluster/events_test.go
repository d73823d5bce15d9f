package cluster

import (
	"testing"

	"levee/market/engine"
)

func TestDecodeEvents(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []engine.Event
		wantErr bool
	}{
		{"one event, as instances before batches sent", `{"Type":"status","MarketID":3,"Seq":7}`,
			[]engine.Event{{Type: "status", MarketID: 3, Seq: 7}}, false},
		{"a commit", ` [{"Type":"trade","MarketID":3,"Seq":8},{"Type":"quote","MarketID":3,"Seq":8}]`,
			[]engine.Event{{Type: "trade", MarketID: 3, Seq: 8}, {Type: "quote", MarketID: 3, Seq: 8}}, false},
		{"an empty array", `[]`, nil, true},
		{"two markets in one message", `[{"Type":"trade","MarketID":3,"Seq":8},{"Type":"quote","MarketID":4,"Seq":8}]`, nil, true},
		{"not JSON", `[{"Type":`, nil, true},
		{"nothing", ``, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEvents([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Type != tt.want[i].Type || got[i].MarketID != tt.want[i].MarketID || got[i].Seq != tt.want[i].Seq {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
