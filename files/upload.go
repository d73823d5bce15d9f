package files

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"levee"
)

// Upload is a file as it arrives, checked (Check) and hashed: what every
// owner of uploads (bid attachments, milestone evidence, case evidence)
// stores.
type Upload struct {
	Name        string
	ContentType string
	SHA256      []byte
	Data        []byte
}

// New checks a file by its name, size and detected content and hashes it.
// Errors: EINVALID, ETOOLARGE, both on the field "file".
func New(name string, data []byte) (Upload, error) {
	name, ct, err := Check(name, data)
	if err != nil {
		return Upload{}, err
	}
	sum := sha256.Sum256(data)
	return Upload{Name: name, ContentType: ct, SHA256: sum[:], Data: data}, nil
}

// Size is the upload's length in bytes.
func (u Upload) Size() int { return len(u.Data) }

// Stored describes a stored upload without its bytes, as it is listed: its
// columns scan into it, and Fill adds its hash in hex and its address.
type Stored struct {
	ID          int64     `json:"id,string" db:"id"`
	Name        string    `json:"name" db:"name"`
	ContentType string    `json:"content_type" db:"content_type"`
	Size        int       `json:"size" db:"size"`
	Hash        []byte    `json:"-" db:"sha256"`
	SHA256      string    `json:"sha256" db:"-"`
	UploadedAt  time.Time `json:"uploaded_at" db:"uploaded_at"`
	URL         string    `json:"url" db:"-"`
}

// Fill sets SHA256 from Hash and URL to path followed by the id.
func (s *Stored) Fill(path string) {
	s.SHA256 = hex.EncodeToString(s.Hash)
	s.URL = path + levee.FormatID(s.ID)
}
