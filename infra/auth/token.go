package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MinSecretBytes is the shortest token signing secret NewTokens accepts:
// HS256 is only as strong as its key, and RFC 7518 asks for at least the
// hash size.
const MinSecretBytes = 32

// DefaultTokenTTL is how long an access token lasts when no TTL is given.
// The API has no refresh tokens, so a token must outlive a browsing session
// of reasonable length; an hour bounds what a leaked token is worth.
const DefaultTokenTTL = time.Hour

// Issuer is both the issuer and the audience of the tokens: ticketd signs
// them for itself.
const Issuer = "ticketd"

// leeway tolerates clock skew between the instances that issue and verify.
const leeway = 30 * time.Second

var (
	// ErrInvalidToken refuses a token that is malformed, not signed by us,
	// for another audience, or expired. Which one is for the log only.
	ErrInvalidToken = errors.New("auth: invalid access token")
	// ErrTokenExpired is the ErrInvalidToken of a token past its expiry.
	ErrTokenExpired = fmt.Errorf("auth: access token expired: %w", ErrInvalidToken)
	// ErrShortSecret refuses a signing secret shorter than MinSecretBytes.
	ErrShortSecret = fmt.Errorf("auth: token secret must be at least %d bytes", MinSecretBytes)
)

// Claims is who a valid access token speaks for.
type Claims struct {
	UserID uuid.UUID
	Role   string
}

// tokenClaims is the JWT payload: the registered claims plus the role.
type tokenClaims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies access tokens: JWTs signed with HS256 under
// one secret, naming the user (sub) and their role, issued by and for
// "ticketd". Verification accepts HS256 only, so neither "alg":"none" nor
// a public-key algorithm fed our secret as a key gets through.
//
// The role in a token is a snapshot: a role withdrawn takes effect when
// the token expires.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewTokens returns tokens signed with secret that last ttl (0 means
// DefaultTokenTTL). The secret is copied.
func NewTokens(secret []byte, ttl time.Duration) (*Tokens, error) {
	if len(secret) < MinSecretBytes {
		return nil, ErrShortSecret
	}
	if ttl < 0 {
		return nil, fmt.Errorf("auth: token ttl %v must not be negative", ttl)
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	t := &Tokens{secret: append([]byte(nil), secret...), ttl: ttl, now: time.Now}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	)
	return t, nil
}

// TTL is how long the tokens Issue returns are valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed access token for the user and how long it lasts
// (the expires_in of the login response).
func (t *Tokens) Issue(userID uuid.UUID, role string) (token string, expiresIn time.Duration, err error) {
	if userID == uuid.Nil || role == "" {
		return "", 0, errors.New("auth: issue token: user id and role are required")
	}
	now := t.now().Truncate(time.Second) // JWT times are whole seconds
	claims := tokenClaims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{Issuer},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			ID:        uuid.NewString(),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", 0, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, t.ttl, nil
}

// Verify checks a token's signature, algorithm, issuer, audience and
// times, and returns its claims. Every failure is ErrInvalidToken (an
// expired token, more precisely, ErrTokenExpired), wrapping the reason.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c tokenClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		// WithValidMethods already refuses the rest; this keeps the key
		// from ever meeting another algorithm should that option go.
		if tok.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
		}
		return t.secret, nil
	})
	if errors.Is(err, jwt.ErrTokenExpired) {
		return Claims{}, fmt.Errorf("%w: %w", ErrTokenExpired, err)
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	id, err := uuid.Parse(c.Subject)
	if err != nil || id == uuid.Nil {
		return Claims{}, fmt.Errorf("%w: subject %q is not a user id", ErrInvalidToken, c.Subject)
	}
	if c.Role == "" {
		return Claims{}, fmt.Errorf("%w: no role", ErrInvalidToken)
	}
	return Claims{UserID: id, Role: c.Role}, nil
}
