// Package httpapi is the HTTP adapter (Fiber): the public contract of
// API.md in front of the command handlers and the read models. It declares
// the small ports it needs of each service; a process serves only the
// endpoints of the services it runs.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/infra/auth"
	"github.com/ticketd/ticketing/readmodels"
)

// TokenVerifier checks access tokens.
type TokenVerifier interface {
	Verify(token string) (auth.Claims, error)
}

// TokenIssuer issues access tokens at login.
type TokenIssuer interface {
	Issue(userID uuid.UUID, role string) (string, time.Duration, error)
}

// Limiter rate-limits login attempts per key.
type Limiter interface {
	Allow(key string) (bool, time.Duration)
	Reset(key string)
}

// UserService is what the user endpoints need.
type UserService struct {
	Commands interface {
		Register(ctx context.Context, msg commands.Msg, cmd commands.RegisterUser) (commands.UserState, error)
		Authenticate(ctx context.Context, email, password string) (commands.UserState, error)
		UpdateProfile(ctx context.Context, msg commands.Msg, cmd commands.UpdateProfile) (commands.UserState, error)
	}
	Profiles interface {
		Profile(ctx context.Context, id uuid.UUID) (readmodels.ProfileView, error)
	}
	Tokens TokenIssuer
	// EmailLimiter and IPLimiter bound login attempts per account (against
	// guessing one password) and per client address (against spraying
	// many accounts).
	EmailLimiter Limiter
	IPLimiter    Limiter
}

// EventReads answers event queries.
type EventReads interface {
	Event(ctx context.Context, id uuid.UUID) (readmodels.EventView, error)
	ListEvents(ctx context.Context, req readmodels.EventListRequest) (readmodels.EventPage, error)
}

// EventService is what the event endpoints need.
type EventService struct {
	Commands interface {
		CreateEvent(ctx context.Context, msg commands.Msg, cmd commands.CreateEvent) (commands.EventState, error)
		UpdateEvent(ctx context.Context, msg commands.Msg, cmd commands.UpdateEvent) (commands.EventState, error)
		CancelEvent(ctx context.Context, msg commands.Msg, cmd commands.CancelEvent) (commands.EventState, error)
	}
	Reads EventReads
}

// BookingService is what the booking endpoints need.
type BookingService struct {
	Commands interface {
		Place(ctx context.Context, msg commands.Msg, cmd commands.PlaceBooking) (commands.BookingState, error)
		Cancel(ctx context.Context, msg commands.Msg, cmd commands.CancelBooking) (commands.BookingState, error)
	}
	Reads interface {
		Booking(ctx context.Context, id uuid.UUID) (readmodels.BookingView, error)
		ListUserBookings(ctx context.Context, user uuid.UUID, req readmodels.ListRequest) (readmodels.BookingPage, error)
	}
	// Events checks a booking's event and ticket type before it is placed,
	// so that a typo is a 4xx now rather than a rejection later.
	Events EventReads
}

// PaymentService is what the payment endpoints need.
type PaymentService struct {
	Commands interface {
		Process(ctx context.Context, msg commands.Msg, cmd commands.ProcessPayment) (commands.PaymentState, error)
		Settle(ctx context.Context, msg commands.Msg, cmd commands.SettlePayment) (commands.PaymentState, error)
	}
	Reads interface {
		Payment(ctx context.Context, id uuid.UUID) (readmodels.PaymentView, error)
		Watch(ctx context.Context, id uuid.UUID) (<-chan readmodels.PaymentView, error)
	}
	WebhookSecret []byte
}

// Check is a readiness probe of one dependency.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure the server. A nil service is not served.
type Options struct {
	Log      *slog.Logger
	Tokens   TokenVerifier
	Users    *UserService
	Events   *EventService
	Bookings *BookingService
	Payments *PaymentService
	Ready    []Check
	Metrics  *Metrics
	// CatchUp waits until the read models have applied everything written
	// so far. A read that misses right after a write calls it and tries
	// once more, so a client reads its own writes. Without it (when the
	// read models are fed from another process and no log position can be
	// waited for), a miss is retried for a short while instead.
	CatchUp func(ctx context.Context) error
	// OpenAPI is the document served at /openapi.yaml.
	OpenAPI []byte
	// BodyLimit caps request bodies (bytes); RequestTimeout bounds a
	// request's work.
	BodyLimit      int
	RequestTimeout time.Duration
	Now            func() time.Time
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (see clientIP); none by default, when the connection's
	// peer is the client.
	TrustedProxies []netip.Prefix
}

// Server is the HTTP API.
type Server struct {
	Options
	app *fiber.App
	log *slog.Logger
	// listing caches encoded pages of GET /events for as long as the
	// version listingVersion reports is theirs (see listing.go).
	listing        *listingCache
	listingVersion listingVersioner
	// tokens verifies access tokens, remembering the good ones.
	tokens *verifiedTokens
}

const localClaims = "claims"

// New builds the server and its routes.
func New(o Options) *Server {
	if o.BodyLimit == 0 {
		o.BodyLimit = 64 << 10
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{Options: o, log: o.Log, listing: newListingCache()}
	if o.Events != nil {
		s.listingVersion, _ = o.Events.Reads.(listingVersioner)
	}
	if o.Tokens != nil {
		s.tokens = newVerifiedTokens(o.Tokens, time.Now)
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "ticketd",
		BodyLimit:             o.BodyLimit,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           120 * time.Second,
		StrictRouting:         false,
		CaseSensitive:         true,
		// A default listing page (about 9 kB) goes out in one write: with
		// fasthttp's 4 kB default the header and body took two syscalls,
		// which were most of the server's CPU on GET /events.
		WriteBufferSize: 16 << 10,
	})
	s.guardMethods()
	s.app.Use(recover.New())
	s.app.Use(s.requestID)
	if o.Metrics != nil {
		s.app.Use(o.Metrics.middleware)
	}
	s.routes()
	return s
}

// App returns the Fiber app, to listen or to test with.
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on addr until Shutdown.
func (s *Server) Listen(addr string) error { return s.app.Listen(addr) }

// Shutdown stops accepting connections and waits for requests in flight,
// up to ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

func (s *Server) routes() {
	a := s.app
	a.Get("/healthz", s.healthz)
	a.Get("/readyz", s.readyz)
	if s.Metrics != nil {
		a.Get("/metrics", s.Metrics.handler())
	}
	a.Get("/openapi.yaml", s.openapi)
	if s.Users != nil {
		a.Post("/register", s.register)
		a.Post("/login", s.login)
		a.Get("/profile", s.authn, s.profile)
		a.Put("/profile/update", s.authn, s.updateProfile)
	}
	if s.Events != nil {
		a.Post("/event/create", s.authn, s.admin, s.createEvent)
		a.Put("/event/update/:id", s.authn, s.admin, s.updateEvent)
		a.Delete("/event/delete/:id", s.authn, s.admin, s.deleteEvent)
		a.Get("/events", s.listEvents)
		a.Get("/events/:id", s.getEvent)
	}
	if s.Bookings != nil {
		a.Post("/booking/create", s.authn, s.createBooking)
		a.Post("/booking/cancel", s.authn, s.cancelBooking)
		a.Get("/bookings", s.authn, s.listBookings)
		a.Get("/bookings/:id", s.authn, s.getBooking)
	}
	if s.Payments != nil {
		a.Post("/payment/process", s.authn, s.processPayment)
		a.Post("/payment/status", s.paymentWebhook)
		a.Get("/payment/status/:id", s.authn, s.getPayment)
		a.Get("/payment/status/:id/stream", s.authn, s.streamPayment)
	}
}

// requestID tags each request (honouring a sane X-Request-ID from a proxy)
// so that a client's report can be matched with the logs. The id is kept
// in the response header only, and read back from there when logging
// (requestIDOf): the fast path allocates nothing.
func (s *Server) requestID(c *fiber.Ctx) error {
	h := &c.Response().Header
	if id := c.Request().Header.Peek(fiber.HeaderXRequestID); len(id) > 0 && len(id) <= 128 {
		h.SetBytesKV(headerRequestID, id) // copied
	} else {
		var buf [48]byte
		h.SetBytesKV(headerRequestID, appendRequestID(buf[:0]))
	}
	return c.Next()
}

var headerRequestID = []byte(fiber.HeaderXRequestID)

// Generated request ids are a random prefix, drawn once per process, and a
// counter: unique across requests and restarts, and far cheaper than a
// random UUID per request.
var (
	requestIDPrefix = strings.ReplaceAll(uuid.NewString(), "-", "")[:16] + "-"
	requestCounter  atomic.Uint64
)

func appendRequestID(b []byte) []byte {
	b = append(b, requestIDPrefix...)
	n := requestCounter.Add(1)
	const hexDigits = "0123456789abcdef"
	var tail [16]byte
	for i := len(tail) - 1; i >= 0; i-- {
		tail[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return append(b, tail[:]...)
}

// requestIDOf is the id requestID gave the request.
func requestIDOf(c *fiber.Ctx) string {
	return string(c.Response().Header.PeekBytes(headerRequestID))
}

// ctx is the context of a request's work, bounded by RequestTimeout.
func (s *Server) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.RequestTimeout)
}

// authn requires a valid bearer token.
func (s *Server) authn(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !equalFold(h[:len(prefix)], prefix) {
		return unauthorized("Send an access token from /login as 'Authorization: Bearer <token>'.")
	}
	claims, err := s.tokens.Verify(h[len(prefix):])
	if err != nil {
		return unauthorized("The access token is invalid or expired; log in again.")
	}
	c.Locals(localClaims, claims)
	return c.Next()
}

// admin requires the admin role.
func (s *Server) admin(c *fiber.Ctx) error {
	if claims(c).Role != "admin" {
		return newError(fiber.StatusForbidden, typeForbidden, "Forbidden", "Only administrators may do this.")
	}
	return c.Next()
}

func claims(c *fiber.Ctx) auth.Claims {
	cl, _ := c.Locals(localClaims).(auth.Claims)
	return cl
}

func isAdmin(c *fiber.Ctx) bool { return claims(c).Role == "admin" }

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// freshWait bounds how long a read that misses waits for the read models.
const freshWait = 2 * time.Second

// fresh runs a read; if it misses, it waits for the read models to catch up
// with everything written so far and reads again.
func (s *Server) fresh(ctx context.Context, read func() error) error {
	err := read()
	if !errors.Is(err, fault.ErrNotFound) {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, freshWait)
	defer cancel()
	if s.CatchUp != nil {
		if cErr := s.CatchUp(waitCtx); cErr != nil {
			return err
		}
		return read()
	}
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for errors.Is(err, fault.ErrNotFound) {
		select {
		case <-waitCtx.Done():
			return err
		case <-t.C:
			err = read()
		}
	}
	return err
}

// idempotencyKey returns the request's Idempotency-Key, "" when absent.
func idempotencyKey(c *fiber.Ctx) (string, error) {
	k := c.Get("Idempotency-Key")
	if len(k) > 255 {
		return "", invalid(fieldError{Field: "Idempotency-Key", Message: "must be at most 255 characters"})
	}
	return string([]byte(k)), nil
}

// accepted answers 202 with the resource and where to watch it.
func accepted(c *fiber.Ctx, location string, body any) error {
	c.Location(location)
	c.Status(fiber.StatusAccepted)
	if a, ok := body.(jsonAppender); ok {
		return sendJSON(c, a)
	}
	return c.JSON(body)
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{}
	ready := true
	for _, ch := range s.Ready {
		if err := ch.Check(ctx); err != nil {
			ready = false
			checks[ch.Name] = err.Error()
		} else {
			checks[ch.Name] = "ok"
		}
	}
	status := "ready"
	if !ready {
		status = "unavailable"
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(fiber.Map{"status": status, "checks": checks})
}

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(s.OpenAPI)
}

func itoa(n int) string { return strconv.Itoa(n) }
