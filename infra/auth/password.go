// Package auth holds the adapters that authenticate people and services:
// argon2id password hashes, signed access tokens, secrets kept on disk and
// a limiter of login attempts.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/ticketd/ticketing/commands"
)

var _ commands.PasswordHasher = (*Argon2id)(nil)

// Production cost of a password hash: OWASP's first argon2id
// recommendation (19 MiB, 2 passes, 1 lane), which costs tens of
// milliseconds per hash on a server core.
const (
	DefaultMemory  uint32 = 19 * 1024 // KiB
	DefaultTime    uint32 = 2
	DefaultThreads uint8  = 1
)

const (
	saltLen = 16
	keyLen  = 32
)

// Bounds on the parameters Verify accepts from a stored hash. A hash is
// data: a corrupt or tampered one must not make a login allocate gigabytes
// or spin for minutes.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

var b64 = base64.RawStdEncoding.Strict()

// Argon2id hashes passwords with argon2id into PHC strings such as
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>" (unpadded standard base64).
//
// Hash uses the fields; Verify uses the parameters written in the hash, so
// the cost can be raised later without invalidating stored hashes (see
// NeedsRehash).
//
// argon2id is memory-hard by design: every hash in flight holds Memory KiB
// and a core. Hash and Verify therefore wait for one of MaxConcurrent slots,
// so that a burst of logins queues instead of exhausting the machine.
//
// Set the fields before first use; a zero field means its default.
type Argon2id struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	// MaxConcurrent bounds the hashes computed at once; 0 means GOMAXPROCS,
	// since a hash with one lane keeps one core busy and more at once only
	// adds memory, not throughput.
	MaxConcurrent int

	once  sync.Once
	slots chan struct{}
	// derive is argon2.IDKey; tests replace it to watch the slots.
	derive func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// NewArgon2id returns a hasher with the production parameters.
func NewArgon2id() *Argon2id {
	return &Argon2id{Memory: DefaultMemory, Time: DefaultTime, Threads: DefaultThreads}
}

// NewCheapArgon2id returns a hasher whose hashes cost almost nothing (64
// KiB, one pass), for tests and benchmarks of the code around it. Its
// hashes protect nothing: never use it to store real passwords. Hashes it
// makes verify with any Argon2id, and the other way round.
func NewCheapArgon2id() *Argon2id {
	return &Argon2id{Memory: 64, Time: 1, Threads: 1}
}

func (h *Argon2id) init() {
	h.once.Do(func() {
		n := h.MaxConcurrent
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		h.slots = make(chan struct{}, n)
		if h.derive == nil {
			h.derive = argon2.IDKey
		}
	})
}

// params returns the parameters new hashes use.
func (h *Argon2id) params() phc {
	p := phc{memory: h.Memory, time: h.Time, threads: h.Threads}
	if p.memory == 0 {
		p.memory = DefaultMemory
	}
	if p.time == 0 {
		p.time = DefaultTime
	}
	if p.threads == 0 {
		p.threads = DefaultThreads
	}
	return p
}

// key derives the key of password in a slot.
func (h *Argon2id) key(password string, p phc, keyLen uint32) []byte {
	h.init()
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return h.derive([]byte(password), p.salt, p.time, p.memory, p.threads, keyLen)
}

// Hash returns the PHC string of password under a fresh random salt.
func (h *Argon2id) Hash(password string) (string, error) {
	p := h.params()
	p.salt = make([]byte, saltLen)
	if _, err := rand.Read(p.salt); err != nil {
		return "", fmt.Errorf("auth: password salt: %w", err)
	}
	p.key = h.key(password, p, keyLen)
	return p.String(), nil
}

// Verify reports whether password matches hash. A malformed hash, or one
// whose parameters are out of bounds, matches no password.
func (h *Argon2id) Verify(hash, password string) bool {
	p, ok := parsePHC(hash)
	if !ok {
		return false
	}
	got := h.key(password, p, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1
}

// NeedsRehash reports whether hash was made with other parameters than
// the ones Hash uses now (or is malformed), so that a login that has just
// verified the password may store a fresh hash of it.
func (h *Argon2id) NeedsRehash(hash string) bool {
	p, ok := parsePHC(hash)
	if !ok {
		return true
	}
	want := h.params()
	return p.memory != want.memory || p.time != want.time || p.threads != want.threads ||
		len(p.salt) != saltLen || len(p.key) != keyLen
}

// phc is a parsed argon2id PHC string.
type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// parsePHC reads "$argon2id$v=19$m=M,t=T,p=P$salt$key" strictly: this exact
// shape and order, version 19, parameters and lengths within bounds.
func parsePHC(s string) (phc, bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, false
	}
	var p phc
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return phc{}, false
	}
	m, okM := param(params[0], "m=", maxMemory)
	t, okT := param(params[1], "t=", maxTime)
	l, okP := param(params[2], "p=", maxThreads)
	if !okM || !okT || !okP || m < 8*l {
		return phc{}, false
	}
	p.memory, p.time, p.threads = m, t, uint8(l)
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return phc{}, false
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return phc{}, false
	}
	return p, true
}

// param reads "<prefix><decimal>" with a value in 1..upper.
func param(s, prefix string, upper uint32) (uint32, bool) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || v < 1 || v > uint64(upper) {
		return 0, false
	}
	return uint32(v), true
}
