package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/ticketd/ticketing/infra/auth"
)

// verifiedTokens remembers the access tokens that verified, until they
// expire, so that a client's every request does not pay for parsing and
// checking its JWT again (about a tenth of the server's CPU in a flash
// sale, where each customer sends many requests with one token).
//
// It changes no answer: a token is remembered only after Verify accepted
// it, and only while its exp is in the future. Everything Verify checks
// but exp (signature, algorithm, issuer, audience, subject, role, iat and
// nbf, which can only become truer with time) is settled for good by one
// success. At or past exp the token is verified afresh, and Verify
// decides as before.
type verifiedTokens struct {
	verifier TokenVerifier
	now      func() time.Time

	mu     sync.RWMutex
	tokens map[string]verifiedToken
}

type verifiedToken struct {
	claims  auth.Claims
	expires time.Time
}

// maxVerifiedTokens bounds the memory; past it, expired tokens go first,
// then arbitrary ones (which are only verified again).
const maxVerifiedTokens = 50_000

func newVerifiedTokens(v TokenVerifier, now func() time.Time) *verifiedTokens {
	return &verifiedTokens{verifier: v, now: now, tokens: make(map[string]verifiedToken)}
}

// Verify is TokenVerifier's Verify. token may alias memory that is reused
// after the request: it is copied before it is kept.
func (vt *verifiedTokens) Verify(token string) (auth.Claims, error) {
	vt.mu.RLock()
	e, ok := vt.tokens[token]
	vt.mu.RUnlock()
	if ok && vt.now().Before(e.expires) {
		return e.claims, nil
	}
	claims, err := vt.verifier.Verify(token)
	if err != nil {
		if ok {
			vt.mu.Lock()
			delete(vt.tokens, token)
			vt.mu.Unlock()
		}
		return claims, err
	}
	if exp, ok := expiry(token); ok {
		vt.remember(strings.Clone(token), verifiedToken{claims: claims, expires: exp})
	}
	return claims, nil
}

func (vt *verifiedTokens) remember(token string, e verifiedToken) {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	if len(vt.tokens) >= maxVerifiedTokens {
		now := vt.now()
		for k, old := range vt.tokens {
			if !now.Before(old.expires) {
				delete(vt.tokens, k)
			}
		}
		for k := range vt.tokens {
			if len(vt.tokens) < maxVerifiedTokens*3/4 {
				break
			}
			delete(vt.tokens, k)
		}
	}
	vt.tokens[token] = e
}

// expiry reads the exp claim of a JWT that has already been verified. A
// token without a readable exp is not remembered.
func expiry(token string) (time.Time, bool) {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Int64()
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}
