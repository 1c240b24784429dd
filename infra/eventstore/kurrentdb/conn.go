package kurrentdb

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// schemes maps the connection string schemes the adapter accepts to the
// ones the v4 client understands: it predates the rename to KurrentDB and
// knows only esdb:// and esdb+discover://, which mean the same.
var schemes = map[string]string{
	"kurrentdb":          "esdb",
	"kurrentdb+discover": "esdb+discover",
	"esdb":               "esdb",
	"esdb+discover":      "esdb+discover",
}

const wantSchemes = "kurrentdb://, kurrentdb+discover://, esdb:// or esdb+discover://"

// parseConnString validates a connection string and returns the client's
// configuration. Errors never repeat the string: it may hold a password.
func parseConnString(connString string) (*esdb.Configuration, error) {
	scheme, rest, ok := strings.Cut(connString, "://")
	if !ok || rest == "" {
		return nil, fmt.Errorf("kurrentdb: connection string is not a URL; want %s, e.g. kurrentdb://localhost:2113?tls=false", wantSchemes)
	}
	target, ok := schemes[strings.ToLower(scheme)]
	if !ok {
		if !isScheme(scheme) {
			return nil, fmt.Errorf("kurrentdb: connection string has a malformed scheme; want %s", wantSchemes)
		}
		return nil, fmt.Errorf("kurrentdb: connection string scheme %q is not supported; want %s", scheme, wantSchemes)
	}
	cfg, err := esdb.ParseConnectionString(target + "://" + rest)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("kurrentdb: invalid connection string: %w", err)
	}
	return cfg, nil
}

// isScheme reports whether s has the shape of a URL scheme (RFC 3986), so
// that an error can quote it without quoting, say, credentials that a
// malformed string put before "://".
func isScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
