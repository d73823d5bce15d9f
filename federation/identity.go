package federation

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFileName is where a node keeps its private key inside its data
// directory, unless LEVEE_NODE_KEY_FILE says elsewhere.
const KeyFileName = "node.key"

const pemType = "LEVEE NODE ED25519 PRIVATE KEY"

// LoadOrCreateKey reads the node's private key from path, or makes a new
// Ed25519 key pair and writes it there (mode 0600, created exclusively, so
// two starts cannot each make their own). A key file readable by group or
// others is refused: the key is the city's signature.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("node key %s: mode %o lets others read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType || len(blk.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("node key %s: not a %q PEM block holding a %d-byte seed", path, pemType, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(blk.Bytes), nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	// Written whole to a temporary file, then linked into place: the link
	// fails if another start (an instance of the same node) made the key
	// first, and nobody ever reads a half-written key.
	f, err := os.CreateTemp(filepath.Dir(path), ".node-key-*")
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: pemType, Bytes: key.Seed()}); err != nil {
		f.Close()
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path) // another start won the race: use its key
	} else if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return key, nil
}
