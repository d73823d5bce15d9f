package pgtx

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// JSONValue writes v for a json or jsonb column (a driver.Valuer's body).
func JSONValue(v any) (driver.Value, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// ScanJSON reads a json or jsonb column into dst (an sql.Scanner's body).
// NULL leaves dst as it is.
func ScanJSON(src, dst any) error {
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		return json.Unmarshal(v, dst)
	case string:
		return json.Unmarshal([]byte(v), dst)
	}
	return fmt.Errorf("scan json: unexpected %T", src)
}
