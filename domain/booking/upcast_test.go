package booking_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
)

// The testdata files are booking.cancelled payloads exactly as the code
// of commit 525d54b, where the event was at schema version 1, wrote them
// (see testdata/README.md). They must never be regenerated.
func readV1(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func registry() *es.Registry {
	r := es.NewRegistry()
	booking.Register(r)
	return r
}

func decode(t *testing.T, r *es.Registry, version int, data []byte) (booking.Cancelled, error) {
	t.Helper()
	p, err := r.Decode(&es.Record{Stream: booking.Stream(uuid.New()), Type: booking.TypeCancelled, SchemaVersion: version, Data: data})
	if err != nil {
		return booking.Cancelled{}, err
	}
	c, ok := p.(booking.Cancelled)
	if !ok {
		t.Fatalf("decoded %T, want booking.Cancelled", p)
	}
	return c, nil
}

func TestCancelledV1StoredEarlierReadsAsToday(t *testing.T) {
	tests := []struct {
		file string
		want booking.Cancelled
	}{
		{"cancelled-v1-confirmed.json", booking.Cancelled{
			Reason: "cannot come", From: booking.StatusConfirmed,
			PaymentID: uuid.MustParse("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"), Refund: true,
			At: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		}},
		{"cancelled-v1-awaiting-payment.json", booking.Cancelled{
			Reason: "changed my mind", From: booking.StatusAwaitingPayment, Refund: false,
			At: time.Date(2026, 11, 20, 11, 3, 2, 0, time.UTC),
		}},
	}
	r := registry()
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readV1(t, tt.file)
			if strings.Contains(string(data), "Refund") {
				t.Fatalf("%s mentions Refund: it is not a version 1 payload", tt.file)
			}
			got, err := decode(t, r, 1, data)
			if err != nil {
				t.Fatalf("Decode v1: %v", err)
			}
			if !got.At.Equal(tt.want.At) {
				t.Errorf("At = %v, want %v", got.At, tt.want.At)
			}
			got.At = tt.want.At
			if got != tt.want {
				t.Errorf("Decode v1 =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// A booking whose history was stored at version 1 replays into today's
// aggregate and ends where it ended then.
func TestV1HistoryReplays(t *testing.T) {
	r := registry()
	c, err := decode(t, r, 1, readV1(t, "cancelled-v1-confirmed.json"))
	if err != nil {
		t.Fatal(err)
	}
	b := &booking.Booking{}
	estest.Given(t, b, placed, awaiting, booking.Confirmed{PaymentID: c.PaymentID, At: now}, c)
	if b.Status() != booking.StatusCancelled || b.Reason() != "cannot come" {
		t.Errorf("replayed booking is %s (%q), want cancelled (\"cannot come\")", b.Status(), b.Reason())
	}
}

// What today's aggregate decides and what the upcaster says version 1
// decided agree: the same cancellation stored at either version is read
// as the same fact.
func TestRefundDecisionMatchesTheV1Rule(t *testing.T) {
	r := registry()
	for _, from := range []booking.Status{booking.StatusAwaitingPayment, booking.StatusConfirmed} {
		t.Run(string(from), func(t *testing.T) {
			b := &booking.Booking{}
			estest.Given(t, b, history[from]...)
			if err := b.Cancel("x", now); err != nil {
				t.Fatal(err)
			}
			decided := b.Pending()[0].(booking.Cancelled)
			if decided.Refund != (from == booking.StatusConfirmed) {
				t.Errorf("cancelling a %s booking decides Refund = %v", from, decided.Refund)
			}
			name, version, v2, err := r.Encode(decided)
			if err != nil || name != booking.TypeCancelled || version != 2 {
				t.Fatalf("Encode = %s v%d, %v; want %s v2", name, version, err, booking.TypeCancelled)
			}
			// The same decision as version 1 wrote it: no Refund field.
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(v2, &fields); err != nil {
				t.Fatal(err)
			}
			delete(fields, "Refund")
			v1, _ := json.Marshal(fields)
			fromV1, err := decode(t, r, 1, v1)
			if err != nil {
				t.Fatal(err)
			}
			fromV2, err := decode(t, r, 2, v2)
			if err != nil {
				t.Fatal(err)
			}
			if fromV1 != decided || fromV2 != decided {
				t.Errorf("decided %+v; read back from v1 %+v, from v2 %+v", decided, fromV1, fromV2)
			}
		})
	}
}

// A version 1 payload the upcaster cannot read correctly is an error, not
// a guess: a projector stops at it instead of refunding wrongly.
func TestCancelledV1Refused(t *testing.T) {
	r := registry()
	for name, data := range map[string]string{
		"not json":          `{"Reason":`,
		"null":              `null`,
		"an array":          `[]`,
		"no From":           `{"Reason":"x","PaymentID":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","At":"2026-11-20T10:00:00Z"}`,
		"a bad payment id":  `{"Reason":"x","From":"confirmed","PaymentID":"nope","At":"2026-11-20T10:00:00Z"}`,
		"already a Refund":  `{"Reason":"x","From":"confirmed","PaymentID":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","Refund":false,"At":"2026-11-20T10:00:00Z"}`,
		"From of bad shape": `{"Reason":"x","From":7,"At":"2026-11-20T10:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := decode(t, r, 1, []byte(data)); err == nil {
				t.Errorf("Decode v1 %s = %+v, want an error", data, c)
			}
		})
	}
}
