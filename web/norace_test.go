//go:build !race

package web

// raceEnabled: see race_test.go.
const raceEnabled = false
