// Package estest states aggregate tests as specifications: given these past
// events, when this command, then these new events (or this refusal).
//
//	b := &booking.Booking{}
//	s := estest.Given(t, b, placed, awaiting)
//	s.When(b.Cancel("changed my mind", now)).Then(booking.Cancelled{...})
//
// The past events are replayed through Apply, the way a repository loads an
// aggregate, so a test exercises exactly what production code sees. Go
// evaluates calls left to right, so the one-line form
// estest.Given(t, b, past...).When(b.Cancel(...)) also replays before the
// command runs.
//
// A constructor has no past: estest.New(t, agg, err) takes what it returned.
// Commands that return no error (or more than an error) need no When.
package estest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ticketd/ticketing/domain/es"
)

// Aggregate is what a scenario needs of an aggregate: its applier and the
// es.Changes bookkeeping every aggregate embeds.
type Aggregate interface {
	Apply(es.Payload)
	Replayed(rev uint64)
	Version() int64
	Pending() []es.Payload
}

// Scenario is an aggregate loaded from its past, and what a command did to
// it.
type Scenario struct {
	t   testing.TB
	agg Aggregate // nil when a constructor refused
	err error
}

// Given replays history into agg, which must be a zero aggregate, as the
// stored events at revisions 0, 1, 2...
func Given(t testing.TB, agg Aggregate, history ...es.Payload) *Scenario {
	t.Helper()
	if isNil(agg) || agg.Version() != -1 || len(agg.Pending()) != 0 {
		t.Fatalf("estest: Given needs a zero aggregate to replay into, got %T", agg)
		return &Scenario{t: t}
	}
	for i, p := range history {
		agg.Apply(p)
		agg.Replayed(uint64(i))
	}
	return &Scenario{t: t, agg: agg}
}

// New starts the scenario of a constructor, which decides without a past:
// agg and err are what it returned (agg may be a nil pointer on error).
func New(t testing.TB, agg Aggregate, err error) *Scenario {
	if isNil(agg) {
		agg = nil
	}
	return &Scenario{t: t, agg: agg, err: err}
}

// When notes the error the command returned.
func (s *Scenario) When(err error) *Scenario {
	s.err = err
	return s
}

// Then asserts that the command succeeded and recorded exactly want, in
// order. Then() with no events asserts that nothing was recorded: the
// command was a no-op.
func (s *Scenario) Then(want ...es.Payload) {
	s.t.Helper()
	if s.err != nil {
		s.t.Fatalf("estest: the command failed: %v\nwant events: %s", s.err, typeNames(want))
		return
	}
	if s.agg == nil {
		s.t.Fatalf("estest: no aggregate and no error\nwant events: %s", typeNames(want))
		return
	}
	if d := Diff(s.agg.Pending(), want); d != "" {
		s.t.Errorf("estest: recorded events differ from the expected ones\n%s", d)
	}
}

// ThenError asserts that the command was refused with an error matching
// every target, and recorded nothing. A target that is an error is matched
// with errors.Is; any other target must be a pointer to a variable that
// errors.As fills, so the test can inspect it afterwards:
//
//	var te *booking.TransitionError
//	s.When(b.Confirm(pay, now)).ThenError(&te, fault.ErrConflict)
func (s *Scenario) ThenError(targets ...any) {
	s.t.Helper()
	if len(targets) == 0 {
		s.t.Fatalf("estest: ThenError needs at least one target")
		return
	}
	if s.err == nil {
		var pending []es.Payload
		if s.agg != nil {
			pending = s.agg.Pending()
		}
		s.t.Fatalf("estest: the command succeeded, want an error; it recorded %s", typeNames(pending))
		return
	}
	for _, target := range targets {
		if e, ok := target.(error); ok {
			if !errors.Is(s.err, e) {
				s.t.Errorf("estest: error %q (%T) does not match %q", s.err, s.err, e)
			}
			continue
		}
		if !errors.As(s.err, target) {
			s.t.Errorf("estest: error %q (%T) is not a %s", s.err, s.err, reflect.TypeOf(target).Elem())
		}
	}
	if s.agg != nil && len(s.agg.Pending()) > 0 {
		s.t.Errorf("estest: the refused command recorded %s, want nothing", typeNames(s.agg.Pending()))
	}
}

// Diff describes how got differs from want, event by event and field by
// field, or returns "" when they are equal. Times are compared with
// time.Time.Equal, and a nil slice equals an empty one, because neither
// difference survives storage.
func Diff(got, want []es.Payload) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "  event %d: missing %s\n", i+1, show(want[i]))
		case i >= len(want):
			fmt.Fprintf(&b, "  event %d: unexpected %s\n", i+1, show(got[i]))
		case reflect.TypeOf(got[i]) != reflect.TypeOf(want[i]):
			fmt.Fprintf(&b, "  event %d: got %s\n           want %s\n", i+1, show(got[i]), show(want[i]))
		default:
			name := fmt.Sprintf("%T", got[i])
			for _, d := range diffValue(name, reflect.ValueOf(got[i]), reflect.ValueOf(want[i])) {
				fmt.Fprintf(&b, "  event %d: %s\n", i+1, d)
			}
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return fmt.Sprintf("  recorded %s\n  expected %s\n%s", typeNames(got), typeNames(want), b.String())
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(path string, got, want reflect.Value) []string {
	if got.Type() == timeType {
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, g.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano))}
		}
		return nil
	}
	switch got.Kind() {
	case reflect.Struct:
		var out []string
		for i := range got.NumField() {
			f := got.Type().Field(i)
			out = append(out, diffValue(path+"."+f.Name, got.Field(i), want.Field(i))...)
		}
		return out
	case reflect.Slice:
		if got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: got %d elements %s, want %d %s", path, got.Len(), leaf(got), want.Len(), leaf(want))}
		}
		var out []string
		for i := range got.Len() {
			out = append(out, diffValue(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))...)
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("%s: got %s, want %s", path, leaf(got), leaf(want))}
			}
			return nil
		}
		return diffValue(path, got.Elem(), want.Elem())
	}
	if !equalLeaf(got, want) {
		return []string{fmt.Sprintf("%s: got %s, want %s", path, leaf(got), leaf(want))}
	}
	return nil
}

func equalLeaf(got, want reflect.Value) bool {
	if got.CanInterface() {
		return reflect.DeepEqual(got.Interface(), want.Interface())
	}
	return fmt.Sprintf("%#v", got) == fmt.Sprintf("%#v", want)
}

func leaf(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	if v.CanInterface() {
		return fmt.Sprintf("%v", v.Interface())
	}
	return fmt.Sprintf("%v", v)
}

func show(p es.Payload) string { return fmt.Sprintf("%T%+v", p, p) }

func typeNames(ps []es.Payload) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = fmt.Sprintf("%T", p)
	}
	return "[" + strings.Join(names, " ") + "]"
}

func isNil(a Aggregate) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
