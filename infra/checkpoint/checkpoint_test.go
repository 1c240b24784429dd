package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestFilesKeepCheckpointsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	f, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := f.Load(ctx, "booking-saga"); err != nil || pos != 0 {
		t.Fatalf("fresh checkpoint = %d, %v; want 0", pos, err)
	}
	for _, p := range []uint64{1, 500, 1 << 40} {
		if err := f.Save(ctx, "booking-saga", p); err != nil {
			t.Fatal(err)
		}
	}
	g, _ := Open(dir)
	if pos, err := g.Load(ctx, "booking-saga"); err != nil || pos != 1<<40 {
		t.Fatalf("after reopen = %d, %v", pos, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestFilesRefuseBadNamesAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	f, _ := Open(dir)
	ctx := context.Background()
	for _, name := range []string{"", "../escape", "UPPER", "a/b"} {
		if err := f.Save(ctx, name, 1); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "x.pos"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(ctx, "x"); err == nil {
		t.Fatal("a corrupt checkpoint file was read as valid")
	}
}

func TestMemoryKeepsWhatWasSaved(t *testing.T) {
	ctx := context.Background()
	initial := map[string]uint64{"saga": 6}
	c := NewMemory(initial)
	initial["saga"] = 99 // the caller's map is not shared
	if got, _ := c.Load(ctx, "saga"); got != 6 {
		t.Fatalf("Load(saga) = %d, want the initial 6", got)
	}
	if got, _ := c.Load(ctx, "other"); got != 0 {
		t.Fatalf("Load(other) = %d, want 0 for a name never saved", got)
	}
	if err := c.Save(ctx, "other", 42); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Load(ctx, "other"); got != 42 {
		t.Fatalf("Load(other) after Save(42) = %d", got)
	}
}
