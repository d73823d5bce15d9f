package contracting

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/files"
	"levee/pgtx"
)

// Attachment describes a file attached to a bid, without its bytes.
type Attachment struct {
	ID          int64     `json:"id,string" db:"id"`
	BidID       int64     `json:"bid,string" db:"bid_id"`
	Name        string    `json:"name" db:"name"`
	ContentType string    `json:"content_type" db:"content_type"`
	Size        int       `json:"size" db:"size"`
	Hash        []byte    `json:"-" db:"sha256"`
	SHA256      string    `json:"sha256" db:"-"`
	UploadedAt  time.Time `json:"uploaded_at" db:"uploaded_at"`
	URL         string    `json:"url" db:"-"`
}

func (a *Attachment) fill() {
	a.SHA256 = hex.EncodeToString(a.Hash)
	a.URL = "/api/v1/bid-attachments/" + levee.FormatID(a.ID)
}

const attachmentColumns = `id, bid_id, name, content_type, size, sha256, uploaded_at`

// AttachToBid adds a file to the caller's own active bid while the bid
// window is open, with the same size and type rules as evidence.
// Errors: EINVALID/ETOOLARGE (file), EUNAUTHORIZED, ENOTFOUND (not yours:
// sealed), ECONFLICT (window closed, bid withdrawn).
func (s *Service) AttachToBid(ctx context.Context, who *accounts.Principal, bidID int64, name string, data []byte) (Attachment, error) {
	name, ct, err := files.Check(name, data)
	if err != nil {
		return Attachment{}, err
	}
	sum := sha256.Sum256(data)
	var a Attachment
	err = pgtx.Run(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, _, err := s.ownBid(ctx, tx, who, bidID); err != nil {
			return err
		}
		return tx.GetContext(ctx, &a, `INSERT INTO bid_attachments (bid_id, name, content_type, size, sha256, data, uploaded_by, uploaded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+attachmentColumns,
			bidID, name, ct, len(data), sum[:], data, who.AccountID, s.now())
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
