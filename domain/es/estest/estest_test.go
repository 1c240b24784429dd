package estest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
)

// tally is the smallest aggregate: it adds to a total, refusing to go
// over a limit.
type tally struct {
	es.Changes
	total int
}

type added struct {
	N     int
	Notes []string
	At    time.Time
}

type reset struct{}

func (added) EventType() string { return "tally.added" }
func (reset) EventType() string { return "tally.reset" }

type overError struct{ Total, N int }

func (e *overError) Error() string { return fmt.Sprintf("tally: %d + %d is over 10", e.Total, e.N) }

var errOver = errors.New("tally: over")

func (e *overError) Is(target error) bool { return target == errOver }

func (c *tally) Add(n int, at time.Time) error {
	if c.total+n > 10 {
		return &overError{Total: c.total, N: n}
	}
	if n == 0 {
		return nil
	}
	c.record(added{N: n, At: at})
	return nil
}

// sloppyAdd records even when it refuses: a bug ThenError must catch.
func (c *tally) sloppyAdd(n int) error {
	c.record(added{N: n})
	return &overError{Total: c.total, N: n}
}

func (c *tally) record(p es.Payload) { c.Apply(p); c.Record(p) }

func (c *tally) Apply(p es.Payload) {
	switch e := p.(type) {
	case added:
		c.total += e.N
	case reset:
		c.total = 0
	}
}

// spy is a testing.TB that notes failures instead of failing the test.
type spy struct {
	testing.TB
	errors []string
	fatal  bool
}

func (s *spy) Helper() {}
func (s *spy) Errorf(format string, args ...any) {
	s.errors = append(s.errors, fmt.Sprintf(format, args...))
}
func (s *spy) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	s.fatal = true
}
func (s *spy) failed() bool   { return len(s.errors) > 0 }
func (s *spy) report() string { return strings.Join(s.errors, "\n") }

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestGivenReplaysHistoryAsStoredEvents(t *testing.T) {
	c := &tally{}
	estest.Given(t, c, added{N: 2}, added{N: 3}, reset{}, added{N: 4})
	if c.total != 4 {
		t.Errorf("total after replay = %d, want 4", c.total)
	}
	if c.Version() != 3 {
		t.Errorf("version after replaying 4 events = %d, want 3", c.Version())
	}
	if len(c.Pending()) != 0 {
		t.Errorf("replay left %d pending events, want none", len(c.Pending()))
	}
}

func TestGivenRefusesAnAggregateThatIsNotZero(t *testing.T) {
	c := &tally{}
	_ = c.Add(1, now)
	sp := &spy{}
	estest.Given(sp, c)
	if !sp.fatal {
		t.Fatal("Given accepted an aggregate with pending events")
	}
	sp = &spy{}
	estest.Given(sp, (*tally)(nil))
	if !sp.fatal {
		t.Fatal("Given accepted a nil aggregate")
	}
}

func TestScenarioPasses(t *testing.T) {
	tests := []struct {
		name string
		run  func(t testing.TB)
	}{
		{"recorded events match", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c, added{N: 1}).When(c.Add(2, now)).Then(added{N: 2, At: now})
		}},
		{"no-op recorded nothing", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(0, now)).Then()
		}},
		{"times compare by instant, not by zone", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(2, now)).Then(added{N: 2, At: now.In(time.FixedZone("WIB", 7*3600))})
		}},
		{"nil and empty slices are equal", func(t testing.TB) {
			c := &tally{}
			c.record(added{N: 1, Notes: nil})
			estest.New(t, c, nil).Then(added{N: 1, Notes: []string{}})
		}},
		{"refusal matched with errors.Is and errors.As", func(t testing.TB) {
			c := &tally{}
			var over *overError
			estest.Given(t, c, added{N: 9}).When(c.Add(2, now)).ThenError(errOver, &over)
			if over == nil || over.Total != 9 || over.N != 2 {
				t.Errorf("errors.As target = %+v, want the refusal's details", over)
			}
		}},
		{"constructor refused with a nil pointer", func(t testing.TB) {
			var c *tally
			estest.New(t, c, errOver).ThenError(errOver)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := &spy{}
			tt.run(sp)
			if sp.failed() {
				t.Errorf("scenario failed:\n%s", sp.report())
			}
		})
	}
}

func TestScenarioFails(t *testing.T) {
	tests := []struct {
		name string
		run  func(t testing.TB)
		// the failure report must mention each of these
		says []string
	}{
		{"a field differs", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(2, now)).Then(added{N: 3, At: now})
		}, []string{"estest_test.added.N: got 2, want 3"}},
		{"a time differs", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(2, now)).Then(added{N: 2, At: now.Add(time.Second)})
		}, []string{".At: got 2030-01-02T03:04:05Z, want 2030-01-02T03:04:06Z"}},
		{"a slice differs", func(t testing.TB) {
			c := &tally{}
			c.record(added{N: 1, Notes: []string{"a", "b"}})
			estest.New(t, c, nil).Then(added{N: 1, Notes: []string{"a", "c"}})
		}, []string{`.Notes[1]: got "b", want "c"`}},
		{"an event is missing", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(2, now)).Then(added{N: 2, At: now}, reset{})
		}, []string{"event 2: missing estest_test.reset", "recorded [estest_test.added]", "expected [estest_test.added estest_test.reset]"}},
		{"an event is unexpected", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(2, now)).Then()
		}, []string{"event 1: unexpected estest_test.added"}},
		{"an event has another type", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(2, now)).Then(reset{})
		}, []string{"got estest_test.added", "want estest_test.reset"}},
		{"events expected but the command failed", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c, added{N: 10}).When(c.Add(1, now)).Then(added{N: 1, At: now})
		}, []string{"the command failed: tally: 10 + 1 is over 10"}},
		{"error expected but the command succeeded", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.Add(1, now)).ThenError(errOver)
		}, []string{"the command succeeded", "[estest_test.added]"}},
		{"the error does not match errors.Is", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c, added{N: 10}).When(c.Add(1, now)).ThenError(errors.New("other"))
		}, []string{`does not match "other"`}},
		{"the error does not match errors.As", func(t testing.TB) {
			c := &tally{}
			var target *tallyOtherError
			estest.Given(t, c, added{N: 10}).When(c.Add(1, now)).ThenError(&target)
		}, []string{"is not a *estest_test.tallyOtherError"}},
		{"a refusal recorded events", func(t testing.TB) {
			c := &tally{}
			estest.Given(t, c).When(c.sloppyAdd(1)).ThenError(errOver)
		}, []string{"the refused command recorded [estest_test.added], want nothing"}},
		{"a constructor returned nothing at all", func(t testing.TB) {
			estest.New(t, (*tally)(nil), nil).Then(reset{})
		}, []string{"no aggregate and no error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := &spy{}
			tt.run(sp)
			if !sp.failed() {
				t.Fatal("scenario passed, want a failure")
			}
			for _, s := range tt.says {
				if !strings.Contains(sp.report(), s) {
					t.Errorf("failure report does not say %q:\n%s", s, sp.report())
				}
			}
		})
	}
}

type tallyOtherError struct{}

func (*tallyOtherError) Error() string { return "other" }

func TestDiffIsEmptyForEqualEvents(t *testing.T) {
	a := []es.Payload{added{N: 1, At: now}, reset{}}
	b := []es.Payload{added{N: 1, At: now}, reset{}}
	if d := estest.Diff(a, b); d != "" {
		t.Errorf("Diff of equal events = %q, want empty", d)
	}
}
