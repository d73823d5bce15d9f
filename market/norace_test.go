//go:build !race

package market

// raceEnabled: see race_test.go.
const raceEnabled = false
