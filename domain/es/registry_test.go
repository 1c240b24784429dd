package es_test

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
)

// allPayloads is one zero value of every domain event of the four
// aggregates. TestEveryDeclaredTypeHasASample keeps it complete.
var allPayloads = []es.Payload{
	user.Registered{}, user.ProfileUpdated{}, user.RoleChanged{}, user.EmailReserved{},
	event.Created{}, event.Updated{}, event.Cancelled{}, event.SeatsHeld{},
	event.SeatsRefused{}, event.SeatsSold{}, event.SeatsReleased{},
	booking.Placed{}, booking.AwaitingPayment{}, booking.Rejected{},
	booking.Confirmed{}, booking.Expired{}, booking.Cancelled{},
	payment.Requested{}, payment.Settled{}, payment.Declined{},
	payment.RefundRequested{}, payment.RefundCompleted{},
}

// schemaVersions pins the payloads past schema version 1: each bump comes
// with an upcaster from the previous version and a test that reads a
// payload stored at that version.
var schemaVersions = map[string]int{
	booking.TypeCancelled: 2,
}

func domainRegistry() *es.Registry {
	r := es.NewRegistry()
	user.Register(r)
	event.Register(r)
	booking.Register(r)
	payment.Register(r)
	return r
}

// declaredTypeNames reads the Type* string constants of an aggregate
// package's source: the names its events are stored under.
func declaredTypeNames(t *testing.T, pkg string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", pkg, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Type") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						names = append(names, s)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no Type* constants found in domain/%s", pkg)
	}
	return names
}

func TestEveryDeclaredTypeHasASample(t *testing.T) {
	r := domainRegistry()
	sampled := map[string]bool{}
	for _, p := range allPayloads {
		if sampled[p.EventType()] {
			t.Errorf("two payload types are named %q", p.EventType())
		}
		sampled[p.EventType()] = true
	}
	declared := 0
	for _, pkg := range []string{"user", "event", "booking", "payment"} {
		for _, name := range declaredTypeNames(t, pkg) {
			declared++
			if !r.Known(name) {
				t.Errorf("%s declares event type %q but does not register it", pkg, name)
			}
			if !sampled[name] {
				t.Errorf("event type %q has no sample in allPayloads: add one so its round trip is tested", name)
			}
		}
	}
	if declared != len(allPayloads) {
		t.Errorf("the packages declare %d event types, allPayloads has %d", declared, len(allPayloads))
	}
}

// fill sets every field of v to a random non-zero value, so that a field
// that does not survive encoding shows up as a difference.
func fill(v reflect.Value, rnd *rand.Rand) {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(rnd.Int64N(4e9), rnd.Int64N(1e9)).UTC()))
		return
	case v.Type() == reflect.TypeFor[uuid.UUID]():
		v.Set(reflect.ValueOf(uuid.New()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strconv.Itoa(rnd.IntN(1e6)) + " ü\"\n")
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(1 + rnd.Int64N(1e9))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), rnd)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), rnd)
		}
		v.Set(s)
	default:
		panic("fill: add a case for " + v.Type().String())
	}
}

func TestEncodeDecodeRoundTripsEveryPayload(t *testing.T) {
	r := domainRegistry()
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, zero := range allPayloads {
		t.Run(zero.EventType(), func(t *testing.T) {
			v := reflect.New(reflect.TypeOf(zero)).Elem()
			fill(v, rnd)
			want := v.Interface().(es.Payload)

			name, version, data, err := r.Encode(want)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			wantVersion := 1
			if v, ok := schemaVersions[name]; ok {
				wantVersion = v
			}
			if name != zero.EventType() || version != wantVersion {
				t.Errorf("Encode named it %q v%d, want %q v%d", name, version, zero.EventType(), wantVersion)
			}
			got, err := r.Decode(&es.Record{Stream: "s-1", Type: name, SchemaVersion: version, Data: data})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the payload\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestEncodeAcceptsAPointerAndDecodesAValue(t *testing.T) {
	r := domainRegistry()
	p := &booking.Rejected{Reason: "sold_out"}
	name, _, data, err := r.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Decode(&es.Record{Type: name, SchemaVersion: 1, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if got != (booking.Rejected{Reason: "sold_out"}) {
		t.Errorf("decoded %#v, want the value booking.Rejected{Reason: sold_out}", got)
	}
}

func TestRegistryRefusals(t *testing.T) {
	r := domainRegistry()
	tests := []struct {
		name string
		do   func() error
		says string
	}{
		{"encode an unregistered type", func() error {
			_, _, _, err := r.Encode(greeted{})
			return err
		}, `unregistered event type "test.greeted"`},
		{"decode an unknown type", func() error {
			_, err := r.Decode(&es.Record{Stream: "booking-1", Revision: 7, Type: "booking.teleported", SchemaVersion: 1, Data: []byte(`{}`)})
			return err
		}, `decode booking-1@7: unregistered event type "booking.teleported"`},
		{"decode malformed data", func() error {
			_, err := r.Decode(&es.Record{Stream: "booking-1", Revision: 3, Type: booking.TypePlaced, SchemaVersion: 1, Data: []byte(`{"Quantity":"two"}`)})
			return err
		}, "decode booking-1@3 (booking.placed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
	if r.Known("booking.teleported") {
		t.Error("Known reports an unregistered type")
	}
}

func TestRegisterPanicsOnProgrammingErrors(t *testing.T) {
	tests := []struct {
		name string
		do   func(r *es.Registry)
		says string
	}{
		{"a name registered twice", func(r *es.Registry) {
			booking.Register(r)
			r.Register(booking.Placed{}, 2)
		}, "registered twice: booking.placed"},
		{"two Go types under one name", func(r *es.Registry) {
			r.Register(greeted{}, 1)
			r.Register(greetedAgain{}, 1)
		}, "registered twice: test.greeted"},
		{"a pointer", func(r *es.Registry) {
			r.Register(&greeted{}, 1)
		}, "pass a value, not a pointer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if v == nil {
					t.Fatal("no panic")
				}
				if s, _ := v.(string); !strings.Contains(s, tt.says) {
					t.Errorf("panic %v does not say %q", v, tt.says)
				}
			}()
			tt.do(es.NewRegistry())
		})
	}
}

// greeted is today's (v3) shape of a test event whose history is:
// v1 {"Name":"Ada Lovelace"}, v2 {"Given":"Ada","Family":"Lovelace"},
// v3 adds Greeting.
type greeted struct {
	Given    string
	Family   string
	Greeting string
}

func (greeted) EventType() string { return "test.greeted" }

type greetedAgain struct{ Name string }

func (greetedAgain) EventType() string { return "test.greeted" }

func splitName(data []byte) ([]byte, error) {
	var v1 struct{ Name string }
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	given, family, _ := strings.Cut(v1.Name, " ")
	return json.Marshal(map[string]string{"Given": given, "Family": family})
}

func addGreeting(data []byte) ([]byte, error) {
	var v2 map[string]any
	if err := json.Unmarshal(data, &v2); err != nil {
		return nil, err
	}
	v2["Greeting"] = "hello"
	return json.Marshal(v2)
}

// named is today's (v2) shape of a test event whose v1 was
// {"Name":"Ada Lovelace"}.
type named struct {
	Given  string
	Family string
}

func (named) EventType() string { return "test.named" }

func TestDecodeUpcastsV1AsTodaysV2(t *testing.T) {
	r := es.NewRegistry()
	r.Register(named{}, 2)
	r.RegisterUpcaster("test.named", 1, splitName)

	got, err := r.Decode(&es.Record{Type: "test.named", SchemaVersion: 1, Data: []byte(`{"Name":"Ada Lovelace"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got != (named{Given: "Ada", Family: "Lovelace"}) {
		t.Errorf("v1 decoded as %#v, want named{Given: Ada, Family: Lovelace}", got)
	}
	got, err = r.Decode(&es.Record{Type: "test.named", SchemaVersion: 2, Data: []byte(`{"Given":"Grace","Family":"Hopper"}`)})
	if err != nil || got != (named{Given: "Grace", Family: "Hopper"}) {
		t.Errorf("v2 decoded as %#v, %v; want it as stored", got, err)
	}
	name, version, data, err := r.Encode(named{Given: "Alan", Family: "Turing"})
	if err != nil || name != "test.named" || version != 2 || string(data) != `{"Given":"Alan","Family":"Turing"}` {
		t.Errorf("Encode = %s v%d %s, %v; want today's v2 shape", name, version, data, err)
	}
}

func TestDecodeChainsUpcasters(t *testing.T) {
	r := es.NewRegistry()
	r.Register(greeted{}, 3)
	r.RegisterUpcaster("test.greeted", 1, splitName)
	r.RegisterUpcaster("test.greeted", 2, addGreeting)

	tests := []struct {
		name    string
		version int
		data    string
		want    greeted
	}{
		{"v1 through both upcasters", 1, `{"Name":"Ada Lovelace"}`, greeted{Given: "Ada", Family: "Lovelace", Greeting: "hello"}},
		{"v2 through the last upcaster", 2, `{"Given":"Grace","Family":"Hopper"}`, greeted{Given: "Grace", Family: "Hopper", Greeting: "hello"}},
		{"today's version as it is", 3, `{"Given":"Alan","Family":"Turing","Greeting":"hi"}`, greeted{Given: "Alan", Family: "Turing", Greeting: "hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Decode(&es.Record{Type: "test.greeted", SchemaVersion: tt.version, Data: []byte(tt.data)})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("decoded %#v, want %#v", got, tt.want)
			}
		})
	}

	_, version, data, err := r.Encode(greeted{Given: "Ada"})
	if err != nil || version != 3 {
		t.Fatalf("Encode = v%d, %v; want today's version 3", version, err)
	}
	if strings.Contains(string(data), "Name") {
		t.Errorf("Encode wrote an old shape: %s", data)
	}
}

func TestDecodeUpcastFailures(t *testing.T) {
	broken := errors.New("unreadable v1")
	r := es.NewRegistry()
	r.Register(greeted{}, 3)
	r.RegisterUpcaster("test.greeted", 1, func([]byte) ([]byte, error) { return nil, broken })

	_, err := r.Decode(&es.Record{Type: "test.greeted", SchemaVersion: 1, Data: []byte(`{}`)})
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "upcast test.greeted from v1") {
		t.Errorf("failing upcaster gave %v, want it wrapped with the type and version", err)
	}
	_, err = r.Decode(&es.Record{Type: "test.greeted", SchemaVersion: 2, Data: []byte(`{}`)})
	if err == nil || !strings.Contains(err.Error(), "no upcaster from version 2") {
		t.Errorf("missing upcaster gave %v, want a no-upcaster error", err)
	}
}
