package rawsock

import (
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// OpenPostgres opens a pool of lib/pq connections to url that dial with a
// Dialer, as levee serve's are (and the benchmark's server, which measures
// it).
func OpenPostgres(url string) (*sqlx.DB, error) {
	c, err := pq.NewConnector(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	c.Dialer(Dialer{})
	return sqlx.NewDb(sql.OpenDB(c), "postgres"), nil
}
