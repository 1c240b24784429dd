package es_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ticketd/ticketing/domain/es"
)

func TestExpectedRevisionCheck(t *testing.T) {
	const noStream = -1
	tests := []struct {
		expected es.ExpectedRevision
		// head is the stream's last revision, noStream when it has none
		head int64
		want bool
	}{
		{es.Any, noStream, true},
		{es.Any, 0, true},
		{es.Any, 41, true},
		{es.NoStream, noStream, true},
		{es.NoStream, 0, false},
		{es.NoStream, 41, false},
		{es.StreamExists, noStream, false},
		{es.StreamExists, 0, true},
		{es.StreamExists, 41, true},
		{es.Exact(0), noStream, false}, // revision 0 of a stream that is not there
		{es.Exact(0), 0, true},
		{es.Exact(0), 1, false},
		{es.Exact(41), 41, true},
		{es.Exact(41), 40, false},
		{es.Exact(41), 42, false},
		{es.Exact(41), noStream, false},
		{es.ExpectVersion(-1), noStream, true},
		{es.ExpectVersion(-1), 0, false},
		{es.ExpectVersion(3), 3, true},
		{es.ExpectVersion(3), 4, false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s at head %d", tt.expected, tt.head)
		t.Run(name, func(t *testing.T) {
			exists := tt.head != noStream
			head := uint64(max(tt.head, 0))
			if got := tt.expected.Check(head, exists); got != tt.want {
				t.Errorf("Check(%d, exists=%v) = %v, want %v", head, exists, got, tt.want)
			}
		})
	}
}

func TestExpectedRevisionDescribesItself(t *testing.T) {
	tests := []struct {
		expected                    es.ExpectedRevision
		str                         string
		any, noStream, streamExists bool
		exact                       bool
		revision                    uint64
	}{
		{es.Any, "any", true, false, false, false, 0},
		{es.NoStream, "no stream", false, true, false, false, 0},
		{es.StreamExists, "stream exists", false, false, true, false, 0},
		{es.Exact(0), "revision 0", false, false, false, true, 0},
		{es.Exact(1234567890123), "revision 1234567890123", false, false, false, true, 1234567890123},
		{es.Exact(^uint64(0)), "revision 18446744073709551615", false, false, false, true, ^uint64(0)},
		{es.ExpectVersion(-1), "no stream", false, true, false, false, 0},
		{es.ExpectVersion(9), "revision 9", false, false, false, true, 9},
		{es.ExpectedRevision{}, "any", true, false, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.expected.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if tt.expected.IsAny() != tt.any || tt.expected.IsNoStream() != tt.noStream || tt.expected.IsStreamExists() != tt.streamExists {
				t.Errorf("IsAny/IsNoStream/IsStreamExists = %v/%v/%v, want %v/%v/%v",
					tt.expected.IsAny(), tt.expected.IsNoStream(), tt.expected.IsStreamExists(), tt.any, tt.noStream, tt.streamExists)
			}
			rev, exact := tt.expected.Revision()
			if exact != tt.exact || (exact && rev != tt.revision) {
				t.Errorf("Revision() = %d, %v; want %d, %v", rev, exact, tt.revision, tt.exact)
			}
		})
	}
}

func TestConflictErrorSaysWhatWasExpected(t *testing.T) {
	tests := []struct {
		name string
		err  *es.ConflictError
		want string
	}{
		{"stream exists", &es.ConflictError{Stream: "booking-1", Expected: es.NoStream, Actual: 4, Exists: true},
			"es: append to booking-1: expected no stream, stream is at revision 4"},
		{"stream missing", &es.ConflictError{Stream: "booking-1", Expected: es.Exact(2)},
			"es: append to booking-1: expected revision 2, stream is at no stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err.Error() != tt.want {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.want)
			}
			wrapped := fmt.Errorf("append: %w", tt.err)
			if !errors.Is(wrapped, es.ErrConflict) {
				t.Error("a wrapped ConflictError does not match es.ErrConflict, so handlers would not retry")
			}
			var ce *es.ConflictError
			if !errors.As(wrapped, &ce) || ce.Stream != "booking-1" {
				t.Error("errors.As does not recover the ConflictError")
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	rec := &es.Record{Stream: "booking-42", Type: "booking.placed"}
	tests := []struct {
		name   string
		filter es.Filter
		want   bool
	}{
		{"empty passes everything", es.Filter{}, true},
		{"matching prefix", es.Filter{StreamPrefixes: []string{"event-", "booking-"}}, true},
		{"other prefix", es.Filter{StreamPrefixes: []string{"event-"}}, false},
		{"prefix longer than the stream", es.Filter{StreamPrefixes: []string{"booking-42-and-more"}}, false},
		{"matching type", es.Filter{Types: []string{"booking.expired", "booking.placed"}}, true},
		{"other type", es.Filter{Types: []string{"booking.expired"}}, false},
		{"prefix and type both match", es.Filter{StreamPrefixes: []string{"booking-"}, Types: []string{"booking.placed"}}, true},
		{"prefix matches, type does not", es.Filter{StreamPrefixes: []string{"booking-"}, Types: []string{"booking.expired"}}, false},
		{"type matches, prefix does not", es.Filter{StreamPrefixes: []string{"event-"}, Types: []string{"booking.placed"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.Match(rec); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}
