package auth

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

const password = "correct horse battery staple"

func TestArgon2idHashFormat(t *testing.T) {
	h := NewCheapArgon2id()
	first, err := h.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	phcShape := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phcShape.MatchString(first) {
		t.Fatalf("hash %q is not a PHC string with a 16-byte salt and a 32-byte key", first)
	}
	second, err := h.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestArgon2idVerify(t *testing.T) {
	h := NewCheapArgon2id()
	hash, err := h.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(hash, "$") // "", argon2id, v=19, m=..., salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	flip := func(s string) string { // changes the first base64 digit
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	tests := []struct {
		name     string
		hash     string
		password string
		want     bool
	}{
		{"right password", hash, password, true},
		{"wrong password", hash, password + "!", false},
		{"empty password", hash, "", false},
		{"tampered key", with(5, flip(parts[5])), password, false},
		{"tampered salt", with(4, flip(parts[4])), password, false},
		{"key cut short", with(5, parts[5][:21]), password, false},
		{"other time cost", with(3, "m=64,t=2,p=1"), password, false},
		{"other memory cost", with(3, "m=128,t=1,p=1"), password, false},
		{"argon2i instead of argon2id", with(1, "argon2i"), password, false},
		{"older version", with(2, "v=16"), password, false},
		{"parameters reordered", with(3, "t=1,m=64,p=1"), password, false},
		{"parameter with a leading zero", with(3, "m=064,t=1,p=1"), password, false},
		{"zero passes", with(3, "m=64,t=0,p=1"), password, false},
		{"memory beyond the bound", with(3, "m=4294967295,t=1,p=1"), password, false},
		{"memory overflowing uint32", with(3, "m=4294967296,t=1,p=1"), password, false},
		{"memory below 8 KiB per lane", with(3, "m=8,t=1,p=2"), password, false},
		{"padded base64", with(5, parts[5]+"="), password, false},
		{"not base64", with(5, "!!!"+parts[5][3:]), password, false},
		{"missing field", strings.Join(parts[:5], "$"), password, false},
		{"extra field", hash + "$x", password, false},
		{"empty", "", password, false},
		{"bcrypt hash", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", password, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.Verify(tt.hash, tt.password); got != tt.want {
				t.Fatalf("Verify(%q) = %v, want %v", tt.hash, got, tt.want)
			}
		})
	}
}

// A hash carries its parameters, so raising the cost later keeps every
// stored hash valid.
func TestArgon2idParametersFromHash(t *testing.T) {
	verifier := &Argon2id{Memory: 32, Time: 5, Threads: 1}
	tests := []struct {
		name   string
		hasher *Argon2id
		params string
	}{
		{"cheap", NewCheapArgon2id(), "m=64,t=1,p=1"},
		{"more passes and lanes", &Argon2id{Memory: 256, Time: 3, Threads: 2}, "m=256,t=3,p=2"},
		{"more memory", &Argon2id{Memory: 2048, Time: 1, Threads: 4}, "m=2048,t=1,p=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := tt.hasher.Hash(password)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(hash, "$")[3]; got != tt.params {
				t.Fatalf("parameters %q, want %q", got, tt.params)
			}
			if !verifier.Verify(hash, password) {
				t.Fatal("a hasher with other parameters does not verify the hash")
			}
			if verifier.Verify(hash, "wrong") {
				t.Fatal("a wrong password verifies")
			}
			if !verifier.NeedsRehash(hash) {
				t.Fatal("NeedsRehash = false for a hash with other parameters")
			}
			if tt.hasher.NeedsRehash(hash) {
				t.Fatal("NeedsRehash = true for a hash with the hasher's own parameters")
			}
		})
	}
}

func TestArgon2idProductionDefaults(t *testing.T) {
	tests := []struct {
		name   string
		hasher *Argon2id
	}{
		{"constructor", NewArgon2id()},
		{"zero value", &Argon2id{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := tt.hasher.Hash(password)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(hash, "$")[3]; got != "m=19456,t=2,p=1" {
				t.Fatalf("parameters %q, want OWASP's m=19456,t=2,p=1", got)
			}
			if !NewCheapArgon2id().Verify(hash, password) {
				t.Fatal("production hash does not verify")
			}
		})
	}
}

// Hashes wait for a slot, so no more than MaxConcurrent hold their memory
// at once, however many logins arrive together.
func TestArgon2idBoundsConcurrentHashes(t *testing.T) {
	const slots, callers = 3, 12
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	h := NewCheapArgon2id()
	h.MaxConcurrent = slots
	h.derive = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		inFlight.Add(-1)
		return argon2.IDKey(password, salt, time, memory, threads, keyLen)
	}
	hash, err := NewCheapArgon2id().Hash(password)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, _ = h.Hash(password)
			} else {
				h.Verify(hash, password)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < slots {
		if time.Now().After(deadline) {
			t.Fatalf("only %d hashes started, want %d", inFlight.Load(), slots)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for a hash beyond the bound to start
	if n := inFlight.Load(); n != slots {
		t.Fatalf("%d hashes in flight, want %d", n, slots)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != slots {
		t.Fatalf("peak of %d hashes in flight, want %d", p, slots)
	}
}

func BenchmarkArgon2idVerify(b *testing.B) {
	h := NewArgon2id()
	hash, err := h.Hash(password)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(hash, password) {
			b.Fatal("verify failed")
		}
	}
}
