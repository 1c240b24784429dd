package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
	testUser    = uuid.MustParse("7d1c3f7e-5a36-4d8e-9b6f-2f1f4f0a9c11")
	testNow     = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
)

func newTestTokens(t testing.TB, now time.Time) *Tokens {
	t.Helper()
	tok, err := NewTokens(testSecret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok.now = func() time.Time { return now }
	return tok
}

func TestTokensIssueVerify(t *testing.T) {
	tok := newTestTokens(t, testNow)
	s, expiresIn, err := tok.Issue(testUser, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if expiresIn != time.Hour {
		t.Fatalf("expiresIn = %v, want 1h", expiresIn)
	}
	got, err := tok.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Claims{UserID: testUser, Role: "admin"}); got != want {
		t.Fatalf("claims %+v, want %+v", got, want)
	}

	var payload map[string]any
	seg := strings.Split(s, ".")[1]
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	wantPayload := map[string]any{
		"sub": testUser.String(), "role": "admin", "iss": "ticketd",
		"iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix()),
	}
	for k, v := range wantPayload {
		if payload[k] != v {
			t.Errorf("claim %s = %v, want %v", k, payload[k], v)
		}
	}
	if aud, _ := payload["aud"].([]any); len(aud) != 1 || aud[0] != "ticketd" {
		t.Errorf("claim aud = %v, want [ticketd]", payload["aud"])
	}
	if jti, _ := payload["jti"].(string); uuid.Validate(jti) != nil {
		t.Errorf("jti %v is not a uuid", payload["jti"])
	}
	again, _, err := tok.Issue(testUser, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if again == s {
		t.Error("two tokens issued at once are identical: jti is not unique")
	}
}

func TestTokensVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(edit func(*tokenClaims)) tokenClaims {
		c := tokenClaims{Role: "customer", RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "ticketd", Subject: testUser.String(), Audience: jwt.ClaimStrings{"ticketd"},
			IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
			ID: uuid.NewString(),
		}}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c tokenClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs256 := func(edit func(*tokenClaims)) string { return sign(jwt.SigningMethodHS256, testSecret, claims(edit)) }
	issuedAt := func(at time.Time) string { return newTestTokens(t, at).mustIssue(t) }
	valid := hs256(nil)
	tamperedRole := func() string { // the payload says admin, the signature is the customer's
		parts := strings.Split(valid, ".")
		admin := strings.Split(hs256(func(c *tokenClaims) { c.Role = "admin" }), ".")
		return parts[0] + "." + admin[1] + "." + parts[2]
	}()

	tests := []struct {
		name    string
		token   string
		wantErr error // nil: valid
	}{
		{"valid", valid, nil},
		{"issued by Tokens", issuedAt(testNow), nil},
		{"expired within the leeway", issuedAt(testNow.Add(-time.Hour - 10*time.Second)), nil},
		{"expired", issuedAt(testNow.Add(-2 * time.Hour)), ErrTokenExpired},
		{"issued in the future", issuedAt(testNow.Add(5 * time.Minute)), ErrInvalidToken},
		{"wrong secret", sign(jwt.SigningMethodHS256, otherSecret, claims(nil)), ErrInvalidToken},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), ErrInvalidToken},
		{"header switched to alg none", withHeader(valid, `{"alg":"none","typ":"JWT"}`), ErrInvalidToken},
		{"header without alg", withHeader(valid, `{"typ":"JWT"}`), ErrInvalidToken},
		{"HS512 under the same secret", sign(jwt.SigningMethodHS512, testSecret, claims(nil)), ErrInvalidToken},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, claims(nil)), ErrInvalidToken},
		{"wrong audience", hs256(func(c *tokenClaims) { c.Audience = jwt.ClaimStrings{"other"} }), ErrInvalidToken},
		{"no audience", hs256(func(c *tokenClaims) { c.Audience = nil }), ErrInvalidToken},
		{"wrong issuer", hs256(func(c *tokenClaims) { c.Issuer = "evil" }), ErrInvalidToken},
		{"no expiry", hs256(func(c *tokenClaims) { c.ExpiresAt = nil }), ErrInvalidToken},
		{"subject not a user id", hs256(func(c *tokenClaims) { c.Subject = "root" }), ErrInvalidToken},
		{"nil user id", hs256(func(c *tokenClaims) { c.Subject = uuid.Nil.String() }), ErrInvalidToken},
		{"no role", hs256(func(c *tokenClaims) { c.Role = "" }), ErrInvalidToken},
		{"payload tampered", tamperedRole, ErrInvalidToken},
		{"garbage", "not.a.token", ErrInvalidToken},
		{"two segments", "abc.def", ErrInvalidToken},
		{"empty", "", ErrInvalidToken},
	}
	verifier := newTestTokens(t, testNow)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifier.Verify(tt.token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.UserID != testUser {
					t.Fatalf("user %v, want %v", got.UserID, testUser)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error %v is not ErrInvalidToken", err)
			}
			if got != (Claims{}) {
				t.Fatalf("claims %+v returned with an error", got)
			}
		})
	}
}

// withHeader replaces a token's header, keeping its payload and signature.
func withHeader(token, header string) string {
	parts := strings.Split(token, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(header))
	return strings.Join(parts, ".")
}

func (tok *Tokens) mustIssue(t testing.TB) string {
	t.Helper()
	s, _, err := tok.Issue(testUser, "customer")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewTokens(t *testing.T) {
	tests := []struct {
		name    string
		secret  []byte
		ttl     time.Duration
		wantTTL time.Duration
		wantErr bool
	}{
		{"default ttl", testSecret, 0, DefaultTokenTTL, false},
		{"own ttl", testSecret, 15 * time.Minute, 15 * time.Minute, false},
		{"secret one byte short", testSecret[:31], 0, 0, true},
		{"no secret", nil, 0, 0, true},
		{"negative ttl", testSecret, -time.Minute, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := NewTokens(tt.secret, tt.ttl)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewTokens error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && tok.TTL() != tt.wantTTL {
				t.Fatalf("TTL %v, want %v", tok.TTL(), tt.wantTTL)
			}
		})
	}
}

func TestTokensIssueRefusesEmptyClaims(t *testing.T) {
	tok := newTestTokens(t, testNow)
	if _, _, err := tok.Issue(uuid.Nil, "customer"); err == nil {
		t.Error("issued a token for the nil user")
	}
	if _, _, err := tok.Issue(testUser, ""); err == nil {
		t.Error("issued a token without a role")
	}
}

func BenchmarkTokensVerify(b *testing.B) {
	tok, err := NewTokens(testSecret, 0)
	if err != nil {
		b.Fatal(err)
	}
	s, _, err := tok.Issue(testUser, "customer")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}
