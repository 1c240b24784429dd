package main

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/readmodels"
)

// ctlResult is what one ticketctl invocation did.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// ctl runs ticketctl in process with env as its whole environment.
func ctl(t testing.TB, env map[string]string, args ...string) ctlResult {
	t.Helper()
	return ctlContext(context.Background(), t, env, args...)
}

func ctlContext(ctx context.Context, t testing.TB, env map[string]string, args ...string) ctlResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return ctlResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r ctlResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// readers are the read models as the queries read them.
type readers struct {
	events   readmodels.EventReader
	bookings readmodels.BookingReader
	payments readmodels.PaymentReader
	profiles readmodels.ProfileReader
}

// snapshot is every view of a world as readers answer them, with the
// indexes: the listing, each user's bookings, the holds due.
type snapshot struct {
	Events       map[uuid.UUID]readmodels.EventView
	Bookings     map[uuid.UUID]readmodels.BookingView
	Payments     map[uuid.UUID]readmodels.PaymentView
	Profiles     map[uuid.UUID]readmodels.ProfileView
	Listing      []readmodels.EventView
	UserBookings map[uuid.UUID][]readmodels.BookingView
	Due          []uuid.UUID
}

// views is what a snapshot covers: the ids of a world.
func takeSnapshot(t testing.TB, r readers, w *world) snapshot {
	t.Helper()
	s, err := trySnapshot(context.Background(), r, w)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func trySnapshot(ctx context.Context, r readers, w *world) (snapshot, error) {
	s := snapshot{
		Events: map[uuid.UUID]readmodels.EventView{}, Bookings: map[uuid.UUID]readmodels.BookingView{},
		Payments: map[uuid.UUID]readmodels.PaymentView{}, Profiles: map[uuid.UUID]readmodels.ProfileView{},
		UserBookings: map[uuid.UUID][]readmodels.BookingView{},
	}
	for _, id := range w.events {
		v, ok, err := r.events.Event(ctx, id)
		if err != nil {
			return s, err
		}
		if ok {
			s.Events[id] = v
		}
	}
	for _, id := range w.bookings {
		v, ok, err := r.bookings.Booking(ctx, id)
		if err != nil {
			return s, err
		}
		if ok {
			s.Bookings[id] = v
		}
	}
	for _, id := range w.payments {
		v, ok, err := r.payments.Payment(ctx, id)
		if err != nil {
			return s, err
		}
		if ok {
			s.Payments[id] = v
		}
	}
	for _, id := range w.users {
		v, ok, err := r.profiles.Profile(ctx, id)
		if err != nil {
			return s, err
		}
		if ok {
			s.Profiles[id] = v
		}
		mine, err := r.bookings.UserBookings(ctx, id, readmodels.BookingKey{}, 10_000)
		if err != nil {
			return s, err
		}
		s.UserBookings[id] = mine
	}
	var err error
	if s.Listing, err = r.events.ScheduledEvents(ctx, readmodels.EventListing{Limit: 10_000}); err != nil {
		return s, err
	}
	if s.Due, err = r.bookings.DueHolds(ctx, time.Now().Add(100*365*24*time.Hour), 10_000); err != nil {
		return s, err
	}
	return s, nil
}

// diff describes how got differs from want, "" if it does not.
func (want snapshot) diff(got snapshot) string {
	var b strings.Builder
	diffMaps(&b, "event", want.Events, got.Events)
	diffMaps(&b, "booking", want.Bookings, got.Bookings)
	diffMaps(&b, "payment", want.Payments, got.Payments)
	diffMaps(&b, "profile", want.Profiles, got.Profiles)
	if !reflect.DeepEqual(want.Listing, got.Listing) {
		fmt.Fprintf(&b, "listing: got %d events, want %d (or another order or content)\n", len(got.Listing), len(want.Listing))
	}
	for id, w := range want.UserBookings {
		if g := got.UserBookings[id]; !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "bookings of user %s: got %d, want %d (or other content)\n", id, len(g), len(w))
		}
	}
	if !reflect.DeepEqual(want.Due, got.Due) {
		fmt.Fprintf(&b, "due holds: got %v, want %v\n", got.Due, want.Due)
	}
	return b.String()
}

func diffMaps[V any](b *strings.Builder, what string, want, got map[uuid.UUID]V) {
	if len(want) != len(got) {
		fmt.Fprintf(b, "%ss: got %d, want %d\n", what, len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			fmt.Fprintf(b, "%s %s: missing\n", what, id)
		case !reflect.DeepEqual(w, g):
			fmt.Fprintf(b, "%s %s:\n  got  %+v\n  want %+v\n", what, id, g, w)
		}
	}
}

// statusRow is one projection's line of `projections status`.
type statusRow struct {
	checkpoint, lag uint64
	pending         string
	state           string
}

// parseStatus reads the log head and the projection rows of `projections
// status` output.
func parseStatus(t testing.TB, out string) (head uint64, rows map[string]statusRow) {
	t.Helper()
	rows = map[string]statusRow{}
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Log head:"):
			h, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "Log head:")), 10, 64)
			if err != nil {
				t.Fatalf("status: log head line %q: %v", line, err)
			}
			head = h
		case len(f) > 0 && f[0] == "PROJECTION":
			inTable = true
		case inTable && len(f) >= 5:
			cp, err1 := strconv.ParseUint(f[1], 10, 64)
			lag, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("status: row %q", line)
			}
			rows[f[0]] = statusRow{checkpoint: cp, lag: lag, pending: f[3], state: strings.Join(f[4:], " ")}
		}
	}
	return head, rows
}
