package contracting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/files"
	"levee/pgtx"
)

// Attachment describes a file attached to a bid, without its bytes.
type Attachment struct {
	files.Stored
	BidID int64 `json:"bid,string" db:"bid_id"`
}

func (a *Attachment) fill() { a.Stored.Fill("/api/v1/bid-attachments/") }

const attachmentColumns = `id, bid_id, name, content_type, size, sha256, uploaded_at`

// AttachToBid adds a file to the caller's own active bid while the bid
// window is open, with the same size and type rules as evidence.
// Errors: EINVALID/ETOOLARGE (file), EUNAUTHORIZED, ENOTFOUND (not yours:
// sealed), ECONFLICT (window closed, bid withdrawn).
func (s *Service) AttachToBid(ctx context.Context, who *accounts.Principal, bidID int64, name string, data []byte) (Attachment, error) {
	up, err := files.New(name, data)
	if err != nil {
		return Attachment{}, err
	}
	var a Attachment
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, _, err := s.ownBid(ctx, tx, who, bidID); err != nil {
			return err
		}
		return tx.GetContext(ctx, &a, `INSERT INTO bid_attachments (bid_id, name, content_type, size, sha256, data, uploaded_by, uploaded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+attachmentColumns,
			bidID, up.Name, up.ContentType, up.Size(), up.SHA256, up.Data, who.AccountID, s.now())
	})
	if err != nil {
		return Attachment{}, fmt.Errorf("attach to bid %d: %w", bidID, err)
	}
	a.fill()
	return a, nil
}

// BidAttachments lists a bid's files for a viewer who may see the bid (its
// bidder before close, everyone after). Errors: ENOTFOUND.
func (s *Service) BidAttachments(ctx context.Context, viewer *accounts.Principal, bidID int64) ([]Attachment, error) {
	if _, err := s.Bid(ctx, viewer, bidID); err != nil {
		return nil, err
	}
	as := []Attachment{}
	if err := s.db.SelectContext(ctx, &as, `SELECT `+attachmentColumns+` FROM bid_attachments WHERE bid_id = $1 ORDER BY id`, bidID); err != nil {
		return nil, pgtx.Unavailable(fmt.Errorf("list attachments: %w", err))
	}
	for i := range as {
		as[i].fill()
	}
	return as, nil
}

// BidAttachment returns one file if the viewer may see its bid; otherwise
// it does not exist for them. Errors: ENOTFOUND.
func (s *Service) BidAttachment(ctx context.Context, viewer *accounts.Principal, id int64) (Attachment, []byte, error) {
	var row struct {
		Attachment
		Data []byte `db:"data"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT `+attachmentColumns+`, data FROM bid_attachments WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Attachment{}, nil, levee.Errorf(levee.ENOTFOUND, "no attachment %d", id)
	} else if err != nil {
		return Attachment{}, nil, pgtx.Unavailable(fmt.Errorf("read attachment: %w", err))
	}
	if _, err := s.Bid(ctx, viewer, row.BidID); err != nil {
		return Attachment{}, nil, levee.Errorf(levee.ENOTFOUND, "no attachment %d", id)
	}
	row.Attachment.fill()
	return row.Attachment, row.Data, nil
}
