package httpapi

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/infra/auth"
)

type countingVerifier struct {
	tokens *auth.Tokens
	calls  atomic.Int64
}

func (c *countingVerifier) Verify(token string) (auth.Claims, error) {
	c.calls.Add(1)
	return c.tokens.Verify(token)
}

func TestVerifiedTokensChangeNoAnswer(t *testing.T) {
	tokens, err := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inner := &countingVerifier{tokens: tokens}
	now := time.Now()
	vt := newVerifiedTokens(inner, func() time.Time { return now })
	user := uuid.New()
	token, _, err := tokens.Issue(user, "customer")
	if err != nil {
		t.Fatal(err)
	}

	for range 5 {
		c, err := vt.Verify(token)
		if err != nil || c.UserID != user || c.Role != "customer" {
			t.Fatalf("Verify = %+v, %v", c, err)
		}
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("a good token was verified %d times, want once", n)
	}

	// Bad tokens are verified every time, and refused every time.
	for _, bad := range []string{"", "garbage", token + "x", token[:len(token)-2]} {
		for range 2 {
			if _, err := vt.Verify(bad); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify(%q) = %v", bad, err)
			}
		}
	}
	if n := inner.calls.Load(); n != 9 {
		t.Fatalf("%d verifications, want 1 + 8 for the bad tokens", n)
	}

	// At its expiry the token is verified again, and the verifier decides.
	exp, ok := expiry(token)
	if !ok || exp.Before(now.Add(59*time.Minute)) || exp.After(now.Add(61*time.Minute)) {
		t.Fatalf("expiry %v, %v", exp, ok)
	}
	now = exp
	before := inner.calls.Load()
	if _, err := vt.Verify(token); err != nil { // within auth's leeway
		t.Fatal(err)
	}
	if inner.calls.Load() != before+1 {
		t.Fatal("a token at its expiry was not verified again")
	}
}

func TestExpiryNeedsAnIntegerExp(t *testing.T) {
	for _, tok := range []string{"a.b.c", "a.eyJleHAiOjEuNX0.c" /* exp 1.5 */, "a.e30.c" /* {} */, "a.eyJleHAiOjE3MDAwMDAwMDB9.c"} {
		_, ok := expiry(tok)
		if want := tok == "a.eyJleHAiOjE3MDAwMDAwMDB9.c"; ok != want {
			t.Errorf("expiry(%q) ok = %v, want %v", tok, ok, want)
		}
	}
}
