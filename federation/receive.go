package federation

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/pgtx"
)

// Receive takes a statement a neighbour delivered: its signature must
// verify, its signer must be a neighbour whose key the charter pins, and
// the handler of its kind must accept it. It is stored as received, in
// the transaction of the handler; a statement already stored is accepted
// again without effect (deliveries are retried) and its stored reply
// returned. Every refusal is recorded (Refusals) and logged.
// Errors: EINVALID (malformed or bad signature), EFORBIDDEN (unknown key or
// refused by its handler), ECONFLICT.
func (n *Node) Receive(ctx context.Context, w Wire) (*Wire, error) {
	st, err := w.Statement()
	if err != nil {
		n.recordRefusal(ctx, nil, "kind "+w.Kind+" from "+w.Signer+": "+levee.ErrorMessage(err))
		return nil, err
	}
	reply, err := n.receive(ctx, &st, nil)
	if err != nil {
		if levee.ErrorCode(err) != levee.EINTERNAL && levee.ErrorCode(err) != levee.EUNAVAILABLE {
			n.recordRefusal(ctx, &st, levee.ErrorMessage(err))
		}
		return nil, err
	}
	if reply == nil {
		return nil, nil
	}
	rw := reply.Wire()
	return &rw, nil
}

// receive stores a verified st from a neighbour and hands it to its
// handler; inReplyTo names our statement it answers (a cosignature).
func (n *Node) receive(ctx context.Context, st *Statement, inReplyTo []byte) (*Statement, error) {
	if st.Signer.Equal(n.PublicKey()) {
		return nil, refuse("a statement signed by this node's own key came from outside")
	}
	from, err := n.net.PeerByKey(ctx, n.db, st.Signer)
	if levee.ErrorCode(err) == levee.ENOTFOUND {
		return nil, refuse("%x is not the key of any neighbour in this node's charter", []byte(st.Signer))
	} else if err != nil {
		return nil, err
	}
	var reply *Statement
	err = pgtx.Run(ctx, n.db, func(tx *sqlx.Tx) error {
		reply = nil
		stored, err := storeStatement(ctx, tx, st, false, n.now(), inReplyTo)
		if err != nil {
			return err
		}
		if !stored {
			reply, err = replyTo(ctx, tx, st.Hash())
			return err
		}
		if err := n.net.Heard(ctx, tx, from); err != nil {
			return err
		}
		if h := n.handlers[st.Kind]; h != nil {
			reply, err = h(ctx, tx, from, *st)
		} else {
			return levee.Invalid("kind", "this node does not take statements of kind %q", st.Kind)
		}
		if err != nil || reply == nil {
			return err
		}
		_, err = storeStatement(ctx, tx, reply, true, n.now(), st.Hash())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("receive %s from %s: %w", st.Kind, from.Name, err)
	}
	return reply, nil
}
