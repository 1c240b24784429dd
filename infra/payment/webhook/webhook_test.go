package webhook

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"payment_id":"p","status":"succeeded"}`)
	sig, ts := Sign(secret, now, body)
	old := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	oldSig, _ := Sign(secret, now.Add(-6*time.Minute), body)
	cases := []struct {
		name    string
		sig, ts string
		body    []byte
		secret  []byte
		want    error
	}{
		{"valid", sig, ts, body, secret, nil},
		{"missing signature", "", ts, body, secret, ErrMissing},
		{"missing timestamp", sig, "", body, secret, ErrMissing},
		{"wrong secret", sig, ts, body, []byte("other"), ErrSignature},
		{"tampered body", sig, ts, []byte(`{"payment_id":"p","status":"failed"}`), secret, ErrSignature},
		{"no sha256= prefix", sig[len("sha256="):], ts, body, secret, ErrSignature},
		{"not hex", "sha256=zz", ts, body, secret, ErrSignature},
		{"too old", oldSig, old, body, secret, ErrTimestamp},
		{"timestamp not a number", sig, "yesterday", body, secret, ErrTimestamp},
		{"signature of another timestamp", sig, strconv.FormatInt(now.Unix()+1, 10), body, secret, ErrSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.secret, tc.sig, tc.ts, tc.body, now); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
