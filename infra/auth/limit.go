package auth

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// Login attempt limits the HTTP layer uses: per email they stop guessing
// one account's password, per client IP they stop one client spraying
// many accounts.
const (
	LoginAttemptsPerEmail = 10
	LoginAttemptsPerIP    = 30
	LoginWindow           = time.Minute
)

// DefaultMaxKeys bounds the keys a LoginLimiter remembers: a few MiB at
// most, whatever a flood of distinct emails or addresses.
const DefaultMaxKeys = 50_000

// maxLimitKeyLen bounds the memory of one key; longer keys are hashed.
const maxLimitKeyLen = 128

// LoginLimiter limits attempts per key with a token bucket: a key may
// spend a burst of Attempts at once, and earns them back evenly over Per
// (10 per minute means one every 6 seconds after the burst).
//
// It is safe for concurrent use and runs no goroutine. Memory is bounded:
// a key idle for Per has a full bucket, which is the same as no entry, so
// such keys are dropped as others come; and when MaxKeys are tracked the
// least recently seen key is forgotten, being the one that has refilled
// the most.
//
// Use one limiter per kind of key (one for emails, one for client
// addresses), and normalise keys first (lower-case emails).
type LoginLimiter struct {
	attempts float64
	per      time.Duration
	maxKeys  int
	now      func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element
	byUse list.List // of *bucket, most recently used first
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// NewLoginLimiter allows attempts per period for each key, remembering at
// most maxKeys keys (0 means DefaultMaxKeys).
func NewLoginLimiter(attempts int, per time.Duration, maxKeys int) *LoginLimiter {
	if attempts < 1 {
		attempts = 1
	}
	if per <= 0 {
		per = LoginWindow
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &LoginLimiter{
		attempts: float64(attempts),
		per:      per,
		maxKeys:  maxKeys,
		now:      time.Now,
		keys:     make(map[string]*list.Element),
	}
}

// Allow spends one attempt of key. When none is left it returns false and
// how long until the next one (the Retry-After of a 429).
func (l *LoginLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	key = shortKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.evictIdle(now)

	var b *bucket
	if e, found := l.keys[key]; found {
		b = e.Value.(*bucket)
		l.byUse.MoveToFront(e)
		l.refill(b, now)
	} else {
		if len(l.keys) >= l.maxKeys {
			oldest := l.byUse.Back()
			l.byUse.Remove(oldest)
			delete(l.keys, oldest.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.attempts, last: now}
		l.keys[key] = l.byUse.PushFront(b)
	}

	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.attempts * float64(l.per))
	// Retry-After counts whole seconds: round up, so that a client that
	// waits as told finds an attempt ready.
	return false, (wait + time.Second - 1).Truncate(time.Second)
}

// Reset forgets key, giving it a full set of attempts: for instance the
// email of a login that has just succeeded.
func (l *LoginLimiter) Reset(key string) {
	key = shortKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.keys[key]; ok {
		l.byUse.Remove(e)
		delete(l.keys, key)
	}
}

// Len is how many keys the limiter tracks now.
func (l *LoginLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

func (l *LoginLimiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.attempts, b.tokens+l.attempts*float64(elapsed)/float64(l.per))
		b.last = now
	}
}

// evictIdle drops the least recently used keys that have been idle for a
// whole period: their buckets are full again, so nothing is lost. Each key
// is dropped once, so the work is constant per Allow, amortised.
func (l *LoginLimiter) evictIdle(now time.Time) {
	for e := l.byUse.Back(); e != nil; e = l.byUse.Back() {
		b := e.Value.(*bucket)
		if now.Sub(b.last) < l.per {
			return
		}
		l.byUse.Remove(e)
		delete(l.keys, b.key)
	}
}

// shortKey bounds the memory one key takes.
func shortKey(key string) string {
	if len(key) <= maxLimitKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + string(sum[:])
}
