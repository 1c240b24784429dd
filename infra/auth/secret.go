package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LoadOrCreateSecret returns the secret kept in the file at path, creating
// the file with a fresh secret of n random bytes when it does not exist.
//
// The file holds the secret as text (2n hex digits when created here) and
// the secret is that text, surrounding white space aside: so an operator
// may copy the file's content into TICKETD_JWT_SECRET or
// TICKETD_PAYMENT_WEBHOOK_SECRET, or write a secret of their own into the
// file, and get the same key. A file shorter than n bytes is refused as too
// weak rather than silently used.
//
// Creation is atomic and safe against racing processes: the secret is
// written to a temporary file (mode 0600), synced, then hard-linked to
// path, which fails if path already exists; the loser of a race reads the
// winner's file. Readers therefore never see a partial secret, and every
// process that shares the directory ends up with the same one.
func LoadOrCreateSecret(path string, n int) ([]byte, error) {
	if n < 1 {
		return nil, fmt.Errorf("auth: secret %s: size %d must be positive", path, n)
	}
	secret, err := readSecret(path, n)
	if !errors.Is(err, os.ErrNotExist) {
		return secret, err
	}
	if err := createSecret(path, n); err != nil {
		return nil, err
	}
	return readSecret(path, n)
}

func readSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < n {
		return nil, fmt.Errorf("auth: secret %s holds %d bytes, want at least %d", path, len(b), n)
	}
	return b, nil
}

// createSecret links a complete, synced secret file to path unless path
// exists already (then it does nothing).
func createSecret(path string, n int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: create secret: %w", err)
	}
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("auth: create secret: %w", err)
	}
	text := make([]byte, hex.EncodedLen(n)+1)
	hex.Encode(text, raw)
	text[len(text)-1] = '\n'

	// CreateTemp opens with mode 0600: the secret is never readable by
	// others, not even for an instant.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("auth: create secret: %w", err)
	}
	_, err = tmp.Write(text)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	// Unlike rename, link never replaces: of racing creators exactly one
	// succeeds and the others keep the winner's secret.
	if err == nil {
		if err = os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
			err = nil
		}
	}
	if rmErr := os.Remove(tmp.Name()); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("auth: create secret: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("auth: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("auth: sync %s: %w", dir, err)
	}
	return nil
}
