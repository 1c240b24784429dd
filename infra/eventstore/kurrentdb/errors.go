package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ticketd/ticketing/domain/es"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrStreamDeleted is matched (with errors.Is) by the errors of appends to
// a stream that was hard-deleted (tombstoned) in KurrentDB, which can never
// be written again, and by reads of it, which also match
// es.ErrStreamNotFound.
var ErrStreamDeleted = errors.New("kurrentdb: stream is deleted")

// clientCode returns the code of the client's *esdb.Error in err's chain.
// It matches on the method rather than the type so that the mapping can be
// tested without a server: the client's error type has unexported fields.
func clientCode(err error) (esdb.ErrorCode, bool) {
	var c interface{ Code() esdb.ErrorCode }
	if errors.As(err, &c) {
		return c.Code(), true
	}
	return 0, false
}

func hasCode(err error, code esdb.ErrorCode) bool {
	c, ok := clientCode(err)
	return ok && c == code
}

// parseWrongExpected reads the stream's actual revision out of the
// client's wrong-expected-version error. The v4 client does not expose it
// as data, only in its message (client.go, AppendToStream):
//
//	wrong expected version: expecting '%s' but got '%s'
//
// where the second value is "no_stream" or the current revision. ok is
// false when the message has another shape, for the caller to ask the
// server instead.
func parseWrongExpected(msg string) (actual uint64, exists, ok bool) {
	const marker = "but got '"
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return 0, false, false
	}
	rest := msg[i+len(marker):]
	j := strings.IndexByte(rest, '\'')
	if j < 0 {
		return 0, false, false
	}
	got := rest[:j]
	if got == "no_stream" {
		return 0, false, true
	}
	n, err := strconv.ParseUint(got, 10, 64)
	if err != nil {
		return 0, false, false
	}
	return n, true, true
}

// conflictFrom maps the client's wrong-expected-version error to the
// port's conflict. ok is false if err is no such error (isWEV false) or
// if the actual revision cannot be read from it (isWEV true).
func conflictFrom(stream string, expected es.ExpectedRevision, err error) (ce *es.ConflictError, isWEV, ok bool) {
	if !hasCode(err, esdb.ErrorCodeWrongExpectedVersion) {
		return nil, false, false
	}
	actual, exists, ok := parseWrongExpected(err.Error())
	if !ok {
		return nil, true, false
	}
	return &es.ConflictError{Stream: stream, Expected: expected, Actual: actual, Exists: exists}, true, true
}

// streamError maps the errors KurrentDB gives for a stream that cannot be
// read: one that never existed or was soft-deleted is not found; one that
// was tombstoned is not found and deleted. Other errors map to nil.
func streamError(err error) error {
	c, ok := clientCode(err)
	switch {
	case !ok:
		return nil
	case c == esdb.ErrorCodeResourceNotFound:
		return es.ErrStreamNotFound
	case c == esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("%w: %w", es.ErrStreamNotFound, ErrStreamDeleted)
	}
	return nil
}

// mayBeBadPosition reports whether a failed read of $all from a position
// may have failed because the position is not where an event starts.
// Servers answer that as an unexpected error (older ones) or as "invalid
// position", which the client files under its catch-all code; anything
// the client classifies more precisely is something else.
func mayBeBadPosition(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if c, ok := clientCode(err); ok {
		return c == esdb.ErrorCodeUnknown || c == esdb.ErrorCodeInternalServer
	}
	switch status.Code(err) {
	case codes.Unknown, codes.Internal, codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return true
	}
	return false
}

// permanent reports whether a subscription that failed with err would
// fail the same way if it were started again: the credentials or the
// server are wrong, not the connection. Subscription drops come as raw
// gRPC errors, other failures as the client's; both are understood.
func permanent(err error) bool {
	if c, ok := clientCode(err); ok {
		switch c {
		case esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnsupportedFeature,
			esdb.ErrorCodeParsing, esdb.ErrorCodeInternalClient:
			return true
		}
		return false
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented, codes.InvalidArgument:
		return true
	}
	return false
}
