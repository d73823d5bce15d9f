package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// cashNews is a list of accounts whose cash an instance moved.
type cashNews struct {
	From     string  `json:"from"`
	Accounts []int64 `json:"accounts"`
}

// CashMoved tells the other instances that these accounts' cash changed
// (engine.Options.CashMoved). A lost message only means another instance
// prices a buy against a stale wallet once: the ledger refuses an overdraft
// at commit, and the engine then re-reads the wallet (docs/engine.md).
func (n *Node) CashMoved(accounts []int64) {
	data, err := json.Marshal(cashNews{From: n.node, Accounts: accounts})
	if err != nil {
		return
	}
	if err := n.nc.Publish(cashSubject, data); err != nil {
		n.log.Debug("announcing cash movements", slog.Any("error", err))
		return
	}
	n.cashOut.Add(1)
}

func (n *Node) serveCash(e Engine) error {
	s, err := n.nc.Subscribe(cashSubject, func(m *nats.Msg) {
		var news cashNews
		if json.Unmarshal(m.Data, &news) != nil || news.From == n.node {
			return
		}
		n.cashIn.Add(1)
		for _, a := range news.Accounts {
			e.ForgetCash(a)
		}
	})
	if err != nil {
		return fmt.Errorf("cluster: subscribe to cash news: %w", err)
	}
	n.subs = append(n.subs, s)
	return nil
}
