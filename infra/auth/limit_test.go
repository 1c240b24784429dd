package auth

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(attempts int, per time.Duration, maxKeys int) (*LoginLimiter, *fakeClock) {
	clock := &fakeClock{t: testNow}
	l := NewLoginLimiter(attempts, per, maxKeys)
	l.now = clock.now
	return l, clock
}

func TestLoginLimiter(t *testing.T) {
	// Each step advances the clock, then tries key; 3 attempts a minute
	// earn one back every 20 seconds.
	type step struct {
		advance   time.Duration
		key       string
		wantOK    bool
		wantRetry time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"allows the burst then refuses with the wait for the next attempt", []step{
			{0, "a@x.io", true, 0},
			{0, "a@x.io", true, 0},
			{0, "a@x.io", true, 0},
			{0, "a@x.io", false, 20 * time.Second},
			{5 * time.Second, "a@x.io", false, 15 * time.Second},
		}},
		{"retry after rounds up to whole seconds", []step{
			{0, "a@x.io", true, 0}, {0, "a@x.io", true, 0}, {0, "a@x.io", true, 0},
			{500 * time.Millisecond, "a@x.io", false, 20 * time.Second},
			{19*time.Second + 400*time.Millisecond, "a@x.io", false, time.Second},
		}},
		{"refills one attempt per interval", []step{
			{0, "a@x.io", true, 0}, {0, "a@x.io", true, 0}, {0, "a@x.io", true, 0},
			{20 * time.Second, "a@x.io", true, 0},
			{0, "a@x.io", false, 20 * time.Second},
		}},
		{"refills no more than the burst", []step{
			{0, "a@x.io", true, 0},
			{time.Hour, "a@x.io", true, 0},
			{0, "a@x.io", true, 0},
			{0, "a@x.io", true, 0},
			{0, "a@x.io", false, 20 * time.Second},
		}},
		{"keys are independent", []step{
			{0, "a@x.io", true, 0}, {0, "a@x.io", true, 0}, {0, "a@x.io", true, 0},
			{0, "a@x.io", false, 20 * time.Second},
			{0, "b@x.io", true, 0},
		}},
		{"long keys differing at the end are distinct", []step{
			{0, strings.Repeat("a", 300) + "1", true, 0},
			{0, strings.Repeat("a", 300) + "1", true, 0},
			{0, strings.Repeat("a", 300) + "1", true, 0},
			{0, strings.Repeat("a", 300) + "1", false, 20 * time.Second},
			{0, strings.Repeat("a", 300) + "2", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLimiter(3, time.Minute, 0)
			for i, s := range tt.steps {
				clock.advance(s.advance)
				ok, retry := l.Allow(s.key)
				if ok != s.wantOK || retry != s.wantRetry {
					t.Fatalf("step %d: Allow = %v, %v; want %v, %v", i, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

func TestLoginLimiterReset(t *testing.T) {
	l, _ := newTestLimiter(1, time.Minute, 0)
	l.Allow("a@x.io")
	if ok, _ := l.Allow("a@x.io"); ok {
		t.Fatal("second attempt allowed")
	}
	l.Reset("a@x.io")
	if ok, _ := l.Allow("a@x.io"); !ok {
		t.Fatal("attempt refused after Reset")
	}
}

func TestLoginLimiterMemoryBound(t *testing.T) {
	tests := []struct {
		name    string
		maxKeys int
		keys    int
		advance time.Duration // between keys
		wantLen int
	}{
		{"a flood of keys stops at the cap", 100, 1000, 0, 100},
		{"keys idle for a period are dropped", 100, 50, time.Minute, 1},
		{"keys active within a period are kept", 100, 50, time.Second, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLimiter(3, time.Minute, tt.maxKeys)
			for i := range tt.keys {
				clock.advance(tt.advance)
				l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
			}
			if n := l.Len(); n != tt.wantLen {
				t.Fatalf("%d keys tracked, want %d", n, tt.wantLen)
			}
		})
	}
}

// Under a flood the key forgotten is the least recently used one, not a
// key under attack that keeps being tried.
func TestLoginLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	l, clock := newTestLimiter(2, time.Minute, 10)
	l.Allow("victim@x.io")
	l.Allow("victim@x.io")
	for i := range 100 {
		clock.advance(100 * time.Millisecond)
		if i%5 == 0 {
			if ok, _ := l.Allow("victim@x.io"); ok {
				t.Fatalf("after %d other keys the exhausted key was allowed", i)
			}
		}
		l.Allow(fmt.Sprintf("flood-%d", i))
	}
	if n := l.Len(); n > 10 {
		t.Fatalf("%d keys tracked, want at most 10", n)
	}
}

func TestLoginLimiterConcurrent(t *testing.T) {
	l := NewLoginLimiter(10, time.Hour, 0)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if ok, _ := l.Allow("a@x.io"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("other-%d", g)) // contention on the map too
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 10 {
		t.Fatalf("%d of 256 racing attempts allowed, want 10", n)
	}
}

func BenchmarkLoginLimiterAllow(b *testing.B) {
	l := NewLoginLimiter(LoginAttemptsPerIP, LoginWindow, 0)
	i := 0
	for b.Loop() {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256%256, i%256))
		i++
	}
}
