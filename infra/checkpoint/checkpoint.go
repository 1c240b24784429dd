// Package checkpoint keeps subscription checkpoints durably in files: one
// small file per subscriber, replaced atomically (write, fsync, rename,
// fsync the directory), so a crash leaves either the old or the new value.
package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Files keeps checkpoints in a directory.
type Files struct {
	dir string
}

// Open returns the checkpoint files in dir, creating it if needed.
func Open(dir string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &Files{dir: dir}, nil
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func (f *Files) path(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("checkpoint: invalid subscriber name %q", name)
	}
	return filepath.Join(f.dir, name+".pos"), nil
}

// Load returns the checkpoint of name, 0 when it has none.
func (f *Files) Load(_ context.Context, name string) (uint64, error) {
	p, err := f.path(name)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint: load %s: %w", name, err)
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("checkpoint: load %s: corrupt file of %d bytes", name, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Save durably replaces the checkpoint of name.
func (f *Files) Save(_ context.Context, name string, pos uint64) error {
	p, err := f.path(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, name+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], pos)
	if _, err := tmp.Write(b[:]); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	d, err := os.Open(f.dir)
	if err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", name, err)
	}
	return nil
}
