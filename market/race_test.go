//go:build race

package market

// raceEnabled scales the slow randomized tests down under the race detector,
// which makes math/big several times slower; the package has no goroutines,
// so those tests gain nothing from it but time.
const raceEnabled = true
