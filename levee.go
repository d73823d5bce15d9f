// Package levee holds the vocabulary every other package shares: the money
// type, identifiers and the coded error type. It imports nothing of ours.
package levee
