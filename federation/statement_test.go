package federation

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"levee"
)

// exampleKey is the key of the worked example in docs/federation.md: the
// seed is SHA-256 of "levee worked example".
func exampleKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("levee worked example"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// exampleAt is the worked example's time.
var exampleAt = time.Date(2026, 9, 14, 6, 30, 0, 0, time.UTC)

func exampleStatement(t *testing.T) Statement {
	t.Helper()
	st, err := Sign(exampleKey(), "vote", exampleAt,
		map[string]any{"proposal": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "approve": true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWorkedExample keeps docs/federation.md's worked example true: its
// encoding, hash and signature are what this code computes, byte for byte.
func TestWorkedExample(t *testing.T) {
	st := exampleStatement(t)
	doc, err := os.ReadFile("../docs/federation.md")
	if err != nil {
		t.Fatal(err)
	}
	w := st.Wire()
	for name, want := range map[string]string{
		"seed":        "sha256(\"levee worked example\")",
		"signer":      w.Signer,
		"hash":        w.Hash,
		"signature":   w.Signature,
		"encoding":    strings.ReplaceAll(string(st.Encoding()), "\n", "\\n"),
		"fingerprint": Fingerprint(st.Signer),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/federation.md lacks the example's %s: %s", name, want)
		}
	}
	if t.Failed() {
		t.Logf("encoding:\n%s\nhash %s\nsigner %s\nsignature %s\nfingerprint %s", st.Encoding(), w.Hash, w.Signer, w.Signature, Fingerprint(st.Signer))
	}
}

func TestStatementsVerify(t *testing.T) {
	st := exampleStatement(t)
	if err := st.Verify(); err != nil {
		t.Fatal(err)
	}
	w := st.Wire()
	back, err := w.Statement()
	if err != nil || back.HashHex() != st.HashHex() {
		t.Fatalf("round trip: %v %s", err, back.HashHex())
	}
	_, other, _ := ed25519.GenerateKey(nil)
	for _, tc := range []struct {
		name  string
		edit  func(w *Wire)
		field string
	}{
		{"payload altered", func(w *Wire) { w.Payload = strings.Replace(w.Payload, "true", "false", 1) }, "signature"},
		{"time altered", func(w *Wire) { w.At++ }, "signature"},
		{"kind altered", func(w *Wire) { w.Kind = "proposal" }, "signature"},
		{"another signer", func(w *Wire) { w.Signer = hex.EncodeToString(other.Public().(ed25519.PublicKey)) }, "signature"},
		{"hash that is not the encoding's", func(w *Wire) { w.Hash = strings.Repeat("0", 64) }, "hash"},
		{"signature cut", func(w *Wire) { w.Signature = w.Signature[:10] }, "signature"},
		{"signer not hex", func(w *Wire) { w.Signer = "zz" }, "signer"},
		{"kind with a line break", func(w *Wire) { w.Kind = "vote\nat=1" }, "kind"},
		{"payload not JSON", func(w *Wire) { w.Payload = "yes" }, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := st.Wire()
			tc.edit(&bad)
			_, err := bad.Statement()
			if levee.ErrorCode(err) != levee.EINVALID || levee.ErrorField(err) != tc.field {
				t.Fatalf("got %v (field %q), want invalid %s", err, levee.ErrorField(err), tc.field)
			}
		})
	}
}

// TestKeyFile: made once with mode 0600, the same key on the next start,
// and refused when others may read it.
func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", KeyFileName)
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second start made another key: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
}

// TestKeyFileRace: starts that make the key at once all end with the same
// key, and none reads a half-written file.
func TestKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFileName)
	keys := make(chan ed25519.PrivateKey, 8)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			k, err := LoadOrCreateKey(path)
			keys <- k
			errs <- err
		}()
	}
	var first ed25519.PrivateKey
	for range 8 {
		k, err := <-keys, <-errs
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = k
		} else if !first.Equal(k) {
			t.Fatal("two starts made two keys")
		}
	}
}

func TestBackoff(t *testing.T) {
	n := New(nil, exampleKey(), Options{MaxBackoff: 10 * time.Second})
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		if got := n.backoff(attempts); got != want {
			t.Errorf("after %d attempts: %v, want %v", attempts, got, want)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	key := exampleKey()
	at := time.Date(2026, 9, 14, 6, 30, 0, 0, time.UTC)
	payload := map[string]any{"proposal": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "approve": true}
	for b.Loop() {
		if _, err := Sign(key, "vote", at, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyWire(b *testing.B) {
	st, _ := Sign(exampleKey(), "vote", time.Now(), map[string]any{"approve": true})
	w := st.Wire()
	for b.Loop() {
		if _, err := w.Statement(); err != nil {
			b.Fatal(err)
		}
	}
}
