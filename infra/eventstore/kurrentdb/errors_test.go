package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ticketd/ticketing/domain/es"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clientErr stands in for the client's *esdb.Error, whose fields are
// unexported: same Code method, same message.
type clientErr struct {
	code esdb.ErrorCode
	msg  string
}

func (e *clientErr) Code() esdb.ErrorCode { return e.code }
func (e *clientErr) Error() string        { return e.msg }

// wrongExpected is the error the v4 client returns for a
// WrongExpectedVersion answer (client.go, AppendToStream), with expected
// and current as it renders them: "any", "no_stream", "stream_exists" or
// a revision; "no_stream" or a revision.
func wrongExpected(expected, current string) error {
	return &clientErr{
		code: esdb.ErrorCodeWrongExpectedVersion,
		msg: "[ErrorCodeWrongExpectedVersion] an append request failed the optimistic concurrency on the server: " +
			fmt.Sprintf("wrong expected version: expecting '%s' but got '%s'", expected, current),
	}
}

func TestConflictFromWrongExpectedVersion(t *testing.T) {
	cases := []struct {
		name     string
		expected es.ExpectedRevision
		wire     string // how the client renders expected
		current  string
		actual   uint64
		exists   bool
	}{
		{"no stream, stream exists", es.NoStream, "no_stream", "1", 1, true},
		{"stream exists, no stream", es.StreamExists, "stream_exists", "no_stream", 0, false},
		{"exact behind the head", es.Exact(0), "0", "1", 1, true},
		{"exact ahead of the head", es.Exact(5), "5", "1", 1, true},
		{"exact on a new stream", es.Exact(0), "0", "no_stream", 0, false},
		{"exact at revision zero", es.Exact(3), "3", "0", 0, true},
		{"any, should the server ever refuse it", es.Any, "any", "41", 41, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", wrongExpected(tc.wire, tc.current))
			ce, isWEV, ok := conflictFrom("booking-1", tc.expected, err)
			if !isWEV || !ok {
				t.Fatalf("conflictFrom = %v, %v, %v", ce, isWEV, ok)
			}
			want := es.ConflictError{Stream: "booking-1", Expected: tc.expected, Actual: tc.actual, Exists: tc.exists}
			if *ce != want {
				t.Errorf("conflict = %+v, want %+v", *ce, want)
			}
			if !errors.Is(ce, es.ErrConflict) {
				t.Error("the conflict does not match es.ErrConflict")
			}
		})
	}
}

func TestConflictFromOtherErrors(t *testing.T) {
	// A wrong-expected-version error whose message changed shape: the
	// caller must ask the server where the stream is.
	_, isWEV, ok := conflictFrom("s", es.Any, &clientErr{code: esdb.ErrorCodeWrongExpectedVersion, msg: "wrong expected version"})
	if !isWEV || ok {
		t.Errorf("unreadable answer: isWEV %v, ok %v; want true, false", isWEV, ok)
	}
	for _, err := range []error{
		&clientErr{code: esdb.ErrorCodeUnknown, msg: "wrong expected version: expecting '1' but got '2'"},
		errors.New("wrong expected version: expecting '1' but got '2'"),
		context.Canceled,
	} {
		if _, isWEV, _ := conflictFrom("s", es.Any, err); isWEV {
			t.Errorf("%v taken for a conflict", err)
		}
	}
}

func TestParseWrongExpected(t *testing.T) {
	cases := []struct {
		msg            string
		actual         uint64
		exists, parsed bool
	}{
		{"wrong expected version: expecting 'any' but got '7'", 7, true, true},
		{"wrong expected version: expecting '3' but got 'no_stream'", 0, false, true},
		{"wrong expected version: expecting '3' but got '18446744073709551615'", 18446744073709551615, true, true},
		{"wrong expected version: expecting '3' but got '-1'", 0, false, false},
		{"wrong expected version: expecting '3' but got 'x'", 0, false, false},
		{"wrong expected version: expecting '3' but got '7", 0, false, false},
		{"stream is at 7", 0, false, false},
	}
	for _, tc := range cases {
		actual, exists, ok := parseWrongExpected(tc.msg)
		if actual != tc.actual || exists != tc.exists || ok != tc.parsed {
			t.Errorf("parseWrongExpected(%q) = %d, %v, %v; want %d, %v, %v", tc.msg, actual, exists, ok, tc.actual, tc.exists, tc.parsed)
		}
	}
}

func TestStreamError(t *testing.T) {
	notFound := streamError(fmt.Errorf("read: %w", &clientErr{code: esdb.ErrorCodeResourceNotFound, msg: "stream 'x' is not found"}))
	if !errors.Is(notFound, es.ErrStreamNotFound) || errors.Is(notFound, ErrStreamDeleted) {
		t.Errorf("not found maps to %v", notFound)
	}
	deleted := streamError(&clientErr{code: esdb.ErrorCodeStreamDeleted, msg: "stream 'x' is deleted"})
	if !errors.Is(deleted, es.ErrStreamNotFound) || !errors.Is(deleted, ErrStreamDeleted) {
		t.Errorf("deleted maps to %v, want es.ErrStreamNotFound and ErrStreamDeleted", deleted)
	}
	for _, err := range []error{
		&clientErr{code: esdb.ErrorUnavailable, msg: "down"},
		errors.New("plain"),
		io.EOF,
	} {
		if got := streamError(err); got != nil {
			t.Errorf("streamError(%v) = %v, want nil", err, got)
		}
	}
}

// The client's own error type is matched through its Code method, also
// when wrapped.
func TestClientCodeOfTheClientsError(t *testing.T) {
	e, _ := esdb.FromError(errors.New("boom"))
	code, ok := clientCode(fmt.Errorf("op: %w", e))
	if !ok || code != esdb.ErrorCodeUnknown {
		t.Errorf("clientCode = %v, %v; want ErrorCodeUnknown, true", code, ok)
	}
	if _, ok := clientCode(errors.New("plain")); ok {
		t.Error("a plain error has a client code")
	}
}

func TestMayBeBadPosition(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"client: unknown (invalid position, older servers' unexpected error)", &clientErr{code: esdb.ErrorCodeUnknown}, true},
		{"client: internal server error", &clientErr{code: esdb.ErrorCodeInternalServer}, true},
		{"client: unavailable", &clientErr{code: esdb.ErrorUnavailable}, false},
		{"client: access denied", &clientErr{code: esdb.ErrorCodeAccessDenied}, false},
		{"gRPC: invalid argument", status.Error(codes.InvalidArgument, "invalid position"), true},
		{"gRPC: unknown", status.Error(codes.Unknown, "Log record at actual pos 87311 has too large length"), true},
		{"gRPC: unavailable", status.Error(codes.Unavailable, "connection refused"), false},
		{"context", fmt.Errorf("x: %w", context.Canceled), false},
	}
	for _, tc := range cases {
		if got := mayBeBadPosition(tc.err); got != tc.want {
			t.Errorf("%s: mayBeBadPosition = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"client: unauthenticated", &clientErr{code: esdb.ErrorCodeUnauthenticated}, true},
		{"client: access denied", &clientErr{code: esdb.ErrorCodeAccessDenied}, true},
		{"client: unavailable", &clientErr{code: esdb.ErrorUnavailable}, false},
		{"client: connection closed", &clientErr{code: esdb.ErrorCodeConnectionClosed}, false},
		{"client: not leader", &clientErr{code: esdb.ErrorCodeNotLeader}, false},
		{"drop: permission denied", status.Error(codes.PermissionDenied, "denied"), true},
		{"drop: unauthenticated", status.Error(codes.Unauthenticated, "bad password"), true},
		{"drop: unavailable", status.Error(codes.Unavailable, "server restarting"), false},
		{"drop: aborted", status.Error(codes.Aborted, "leader changed"), false},
		{"drop: end of stream", io.EOF, false},
	}
	for _, tc := range cases {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("%s: permanent = %v, want %v", tc.name, got, tc.want)
		}
	}
}
