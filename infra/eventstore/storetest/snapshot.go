package storetest

import (
	"bytes"
	"testing"
)

func (h *harness) snapshotTests() []test {
	return []test{
		{"SaveLoadOverwrite", h.testSnapshots},
	}
}

func (h *harness) testSnapshots(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	stream, other := ns.stream("event-1"), ns.stream("event-2")

	load := func(stream string, wantVersion int64, wantData []byte, wantOK bool) {
		t.Helper()
		v, data, ok, err := s.LoadSnapshot(ctx, stream)
		if err != nil {
			t.Fatalf("LoadSnapshot(%s): %v", stream, err)
		}
		if ok != wantOK || v != wantVersion || !bytes.Equal(data, wantData) {
			t.Fatalf("LoadSnapshot(%s) = %d, %q, %v; want %d, %q, %v", stream, v, data, ok, wantVersion, wantData, wantOK)
		}
	}
	load(stream, 0, nil, false)

	data := []byte(`{"capacity":100,"held":3}`)
	if err := s.SaveSnapshot(ctx, stream, 3, data); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	data[2] = 'X' // the store keeps its own copy
	load(stream, 3, []byte(`{"capacity":100,"held":3}`), true)

	if err := s.SaveSnapshot(ctx, stream, 7, []byte(`{"capacity":100,"held":9}`)); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	load(stream, 7, []byte(`{"capacity":100,"held":9}`), true)
	load(other, 0, nil, false)

	if err := s.SaveSnapshot(ctx, other, 0, nil); err != nil {
		t.Fatalf("SaveSnapshot of empty data: %v", err)
	}
	load(other, 0, nil, true)
	load(stream, 7, []byte(`{"capacity":100,"held":9}`), true)
}
