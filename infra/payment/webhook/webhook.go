// Package webhook signs and verifies payment provider notifications:
// X-Signature is "sha256=" and the hex HMAC-SHA256, keyed by the shared
// secret, of "<X-Timestamp>.<raw body>"; X-Timestamp is unix seconds and
// must be within Tolerance of now, which stops replays of old messages.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far X-Timestamp may be from now.
const Tolerance = 5 * time.Minute

// Header names.
const (
	SignatureHeader = "X-Signature"
	TimestampHeader = "X-Timestamp"
)

// Errors of Verify. They say what is wrong to the log, never to the caller.
var (
	ErrMissing   = errors.New("webhook: signature or timestamp missing")
	ErrTimestamp = errors.New("webhook: timestamp malformed or outside the tolerance")
	ErrSignature = errors.New("webhook: signature does not match")
)

// Sign returns the X-Signature value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) (signature, timestamp string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return "sha256=" + hex.EncodeToString(mac(secret, timestamp, body)), timestamp
}

// Verify checks a notification's signature and timestamp at now.
func Verify(secret []byte, signature, timestamp string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" {
		return ErrMissing
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(secs, 0)); d > Tolerance || d < -Tolerance {
		return ErrTimestamp
	}
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return ErrSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrSignature
	}
	return nil
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
