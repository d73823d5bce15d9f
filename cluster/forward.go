package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"levee"
	"levee/market"
	"levee/market/engine"
)

// Engine is what the NATS side needs of this instance's market engine.
type Engine interface {
	SubmitForwarded(ctx context.Context, account, marketID int64, o market.Order, key string) (engine.Result, error)
	QuoteForwarded(ctx context.Context, account, marketID int64, o market.Order) (market.Fill, engine.Market, error)
	Release(ctx context.Context, marketID int64)
	ForgetCash(account int64)
	ForgetOwner(marketID int64)
}

// orderRequest is an order forwarded to its market's owner. The account was
// authenticated by the instance that received the request; instances trust
// each other (NATS is the city's private network, docs/cluster.md).
type orderRequest struct {
	From     string       `json:"from"`
	Account  int64        `json:"account"`
	Market   int64        `json:"market"`
	Order    market.Order `json:"order"`
	Key      string       `json:"key,omitempty"`
	Deadline time.Time    `json:"deadline"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

type orderReply struct {
	Result *engine.Result `json:"result,omitempty"`
	Error  *wireError     `json:"error,omitempty"`
}

// defaultForwardWait bounds a forward whose caller set no deadline.
// (An owner that is paused never answers: the caller waits this long.)
const defaultForwardWait = 5 * time.Second

// Submit forwards an order to the instance that owns its market and waits
// for its answer (engine.Forwarder). The owner runs it under the caller's
// deadline. No answer (the owner died or NATS is away) is a 503: the order
// may or may not have committed, and a retry with the same Idempotency-Key
// finds out and never trades twice.
func (n *Node) Submit(ctx context.Context, node string, account, marketID int64, o market.Order, key string) (engine.Result, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		deadline = time.Now().Add(defaultForwardWait)
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	data, err := json.Marshal(orderRequest{From: n.node, Account: account, Market: marketID, Order: o, Key: key, Deadline: deadline})
	if err != nil {
		return engine.Result{}, fmt.Errorf("forward order: %w", err)
	}
	n.forwards.Add(1)
	msg, err := n.nc.RequestWithContext(ctx, ordersSubject(node), data)
	if err != nil {
		n.forwardFails.Add(1)
		n.log.Debug("forwarding an order failed", slog.String("owner", node), slog.Int64("market_id", marketID), slog.Any("error", err))
		if errors.Is(err, nats.ErrNoResponders) {
			return engine.Result{}, fmt.Errorf("%w: %w", engine.ErrNotDelivered,
				levee.Errorf(levee.EUNAVAILABLE, "the instance serving this market is not answering; the order was not executed, try again"))
		}
		return engine.Result{}, levee.Errorf(levee.EUNAVAILABLE, "the instance serving this market did not answer in time; retry with the same Idempotency-Key to learn whether it executed")
	}
	var r orderReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return engine.Result{}, fmt.Errorf("forward order: bad reply from %s: %w", node, err)
	}
	if r.Error != nil {
		e := &levee.Error{Code: r.Error.Code, Message: r.Error.Message, Field: r.Error.Field}
		return engine.Result{}, e
	}
	if r.Result == nil {
		return engine.Result{}, fmt.Errorf("forward order: empty reply from %s", node)
	}
	return *r.Result, nil
}

type quoteReply struct {
	Fill   market.Fill   `json:"fill"`
	Market engine.Market `json:"market"`
	Error  *wireError    `json:"error,omitempty"`
}

// Quote asks the instance that owns a market for a quote (engine.Forwarder).
func (n *Node) Quote(ctx context.Context, node string, account, marketID int64, o market.Order) (market.Fill, engine.Market, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		deadline = time.Now().Add(defaultForwardWait)
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	data, err := json.Marshal(orderRequest{From: n.node, Account: account, Market: marketID, Order: o, Deadline: deadline})
	if err != nil {
		return market.Fill{}, engine.Market{}, fmt.Errorf("forward quote: %w", err)
	}
	n.quotes.Add(1)
	msg, err := n.nc.RequestWithContext(ctx, quotesSubject(node), data)
	if err != nil {
		return market.Fill{}, engine.Market{}, levee.Errorf(levee.EUNAVAILABLE, "the instance serving this market did not answer")
	}
	var r quoteReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return market.Fill{}, engine.Market{}, fmt.Errorf("forward quote: bad reply from %s: %w", node, err)
	}
	if r.Error != nil {
		return r.Fill, r.Market, &levee.Error{Code: r.Error.Code, Message: r.Error.Message, Field: r.Error.Field}
	}
	return r.Fill, r.Market, nil
}

func (n *Node) serveQuote(e Engine, m *nats.Msg) {
	var req orderRequest
	var rep quoteReply
	if err := json.Unmarshal(m.Data, &req); err != nil {
		rep.Error = &wireError{Code: levee.EINTERNAL, Message: "bad forwarded quote"}
	} else {
		ctx, cancel := context.WithDeadline(context.Background(), req.Deadline)
		f, mk, err := e.QuoteForwarded(ctx, req.Account, req.Market, req.Order)
		cancel()
		rep.Fill, rep.Market = f, mk
		if err != nil {
			rep.Error = &wireError{Code: levee.ErrorCode(err), Message: levee.ErrorMessage(err), Field: levee.ErrorField(err)}
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		n.log.Error("encoding a forwarded quote's reply", slog.Any("error", err))
		return
	}
	_ = m.Respond(data)
}

// Release asks instance node to stop market marketID's book and end its
// lease (engine.Forwarder).
func (n *Node) Release(ctx context.Context, node string, marketID int64) error {
	_, err := n.nc.RequestWithContext(ctx, releaseSubject(node), []byte(levee.FormatID(marketID)))
	if err != nil {
		return fmt.Errorf("ask %s to release market %d: %w", node, marketID, err)
	}
	return nil
}

// serveOrders answers orders and release requests addressed to this
// instance. Each request runs in its own goroutine: the subscription's
// goroutine only hands them out, so a slow market never holds up another.
func (n *Node) serveOrders(e Engine) error {
	s, err := n.nc.Subscribe(ordersSubject(n.node), func(m *nats.Msg) { go n.serveOrder(e, m) })
	if err != nil {
		return fmt.Errorf("cluster: subscribe to orders: %w", err)
	}
	n.subs = append(n.subs, s)
	s, err = n.nc.Subscribe(quotesSubject(n.node), func(m *nats.Msg) { go n.serveQuote(e, m) })
	if err != nil {
		return fmt.Errorf("cluster: subscribe to quotes: %w", err)
	}
	n.subs = append(n.subs, s)
	s, err = n.nc.Subscribe(releaseSubject(n.node), func(m *nats.Msg) {
		go func() {
			id, err := strconv.ParseInt(string(m.Data), 10, 64)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				e.Release(ctx, id)
				cancel()
			}
			_ = m.Respond(nil)
		}()
	})
	if err != nil {
		return fmt.Errorf("cluster: subscribe to releases: %w", err)
	}
	n.subs = append(n.subs, s)
	return nil
}

func (n *Node) serveOrder(e Engine, m *nats.Msg) {
	var req orderRequest
	var rep orderReply
	if err := json.Unmarshal(m.Data, &req); err != nil {
		rep.Error = &wireError{Code: levee.EINTERNAL, Message: "bad forwarded order"}
	} else {
		n.served.Add(1)
		ctx, cancel := context.WithDeadline(context.Background(), req.Deadline)
		r, err := e.SubmitForwarded(ctx, req.Account, req.Market, req.Order, req.Key)
		cancel()
		if err != nil {
			rep.Error = &wireError{Code: levee.ErrorCode(err), Message: levee.ErrorMessage(err), Field: levee.ErrorField(err)}
			if rep.Error.Code == levee.EINTERNAL {
				n.log.Error("forwarded order failed", slog.String("from", req.From), slog.Int64("market_id", req.Market), slog.Any("error", err))
			}
		} else {
			rep.Result = &r
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		n.log.Error("encoding a forwarded order's reply", slog.Any("error", err))
		return
	}
	if err := m.Respond(data); err != nil {
		n.log.Warn("replying to a forwarded order", slog.String("from", req.From), slog.Any("error", err))
	}
}
