package storetest

import (
	"errors"
	"testing"

	"github.com/ticketd/ticketing/domain/es"
)

func (h *harness) closeTests() []test {
	return []test{
		{"EndsSubscriptionsAndRefusesUse", h.testClose},
	}
}

func (h *harness) testClose(t *testing.T) {
	s, closeStore := h.unmanaged(t)
	ns := newNamespace()
	ctx := testContext(t)
	from := head(t, s)

	delivered := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- s.SubscribeAll(ctx, from, ns.filter(), func([]es.Record) error {
			close(delivered)
			return nil
		})
	}()
	mustAppend(t, s, ns.stream("a"), es.NoStream, newRecords(ns.typ("T"), 1)...)
	select {
	case <-delivered: // the subscription is now live
	case err := <-result:
		t.Fatalf("SubscribeAll = %v before delivering", err)
	}
	if err := closeStore(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-result; !errors.Is(err, es.ErrClosed) {
		t.Errorf("live subscription ended with %v, want es.ErrClosed", err)
	}

	_, err := s.Append(ctx, ns.stream("a"), es.Any, newRecords(ns.typ("T"), 1))
	checkClosed(t, "Append", err)
	_, err = s.ReadStream(ctx, ns.stream("a"), es.ReadOptions{})
	checkClosed(t, "ReadStream", err)
	_, err = s.ReadAll(ctx, 0, 10)
	checkClosed(t, "ReadAll", err)
	_, err = s.HeadPosition(ctx)
	checkClosed(t, "HeadPosition", err)
	err = s.SubscribeAll(ctx, 0, ns.filter(), func([]es.Record) error { return nil })
	checkClosed(t, "SubscribeAll", err)
	checkClosed(t, "SaveSnapshot", s.SaveSnapshot(ctx, ns.stream("a"), 0, nil))
	_, _, _, err = s.LoadSnapshot(ctx, ns.stream("a"))
	checkClosed(t, "LoadSnapshot", err)
}

func checkClosed(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, es.ErrClosed) {
		t.Errorf("%s after Close = %v, want es.ErrClosed", op, err)
	}
}
