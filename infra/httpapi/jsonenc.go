package httpapi

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/readmodels"
)

// Hand-written encoders for the hottest answers. Each writes exactly the
// bytes encoding/json writes for the matching wire struct of dto.go
// (field order, HTML-safe string escaping, RFC 3339 times, null for absent
// values), which jsonenc_test.go checks against encoding/json. They exist
// because reflection-driven encoding was half the CPU of GET /events.

// encodable reports whether every time of v can be written as RFC 3339:
// encoding/json refuses a year outside 0..9999, and so the callers fall
// back to it, to fail the same way.
func encodable(v *readmodels.EventView) bool {
	for _, t := range [...]time.Time{v.StartsAt, v.EndsAt, v.CreatedAt, v.UpdatedAt} {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return false
		}
	}
	return true
}

// appendEventJSON appends eventFromView(v) as encoding/json would.
func appendEventJSON(b []byte, v *readmodels.EventView) []byte {
	b = append(b, `{"id":`...)
	b = appendUUID(b, v.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, v.Name)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, v.Description)
	b = append(b, `,"venue":`...)
	b = appendJSONString(b, v.Venue)
	b = append(b, `,"starts_at":`...)
	b = appendTime(b, v.StartsAt)
	b = append(b, `,"ends_at":`...)
	if v.EndsAt.IsZero() {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, v.EndsAt)
	}
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, v.Currency)
	b = append(b, `,"max_per_booking":`...)
	b = strconv.AppendInt(b, int64(v.MaxPerBooking), 10)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(v.Status))
	b = append(b, `,"ticket_types":[`...)
	for i := range v.TicketTypes {
		t := &v.TicketTypes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, t.Name)
		b = append(b, `,"price":`...)
		b = strconv.AppendInt(b, t.Price, 10)
		b = append(b, `,"capacity":`...)
		b = strconv.AppendInt(b, int64(t.Capacity), 10)
		b = append(b, `,"available":`...)
		b = strconv.AppendInt(b, int64(t.Available), 10)
		b = append(b, '}')
	}
	b = append(b, `],"created_at":`...)
	b = appendTime(b, v.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, v.UpdatedAt)
	return append(b, '}')
}

// appendEventListJSON appends the listing page as encoding/json would
// write eventListJSON. It reports false, writing nothing, when a time of
// the page cannot be encoded.
func appendEventListJSON(b []byte, page *readmodels.EventPage) ([]byte, bool) {
	for i := range page.Items {
		if !encodable(&page.Items[i]) {
			return b, false
		}
	}
	b = append(b, `{"items":[`...)
	for i := range page.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEventJSON(b, &page.Items[i])
	}
	b = append(b, `],"next_cursor":`...)
	if page.NextCursor == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, page.NextCursor)
	}
	return append(b, '}'), true
}

func appendUUID(b []byte, id uuid.UUID) []byte {
	var buf [36]byte
	const hexDigits = "0123456789abcdef"
	j := 0
	for i, x := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexDigits[x>>4], hexDigits[x&0x0f]
		j += 2
	}
	b = append(b, '"')
	b = append(b, buf[:]...)
	return append(b, '"')
}

// appendTime writes t in UTC as time.Time's MarshalJSON does (the caller
// has checked that the year is in range).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString writes s as encoding/json does with its default HTML
// escaping: control characters, quote, backslash, <, > and & escaped,
// invalid UTF-8 replaced by U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonAppender is a wire struct with a hand-written encoder. appendJSON
// reports false, and the caller falls back to encoding/json, when a time
// cannot be written as RFC 3339 (a year outside 0..9999).
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, bool)
}

// sendJSON answers with v as application/json.
func sendJSON(c *fiber.Ctx, v jsonAppender) error {
	body, ok := v.appendJSON(make([]byte, 0, 512))
	if !ok {
		return c.JSON(v)
	}
	c.Response().Header.SetContentTypeBytes(mimeJSON)
	c.Response().SetBodyRaw(body)
	return nil
}

// inRange reports whether appendTime writes t as encoding/json does: a UTC
// time (as every wire struct holds) in a year encoding/json accepts.
func inRange(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999 && t.Location() == time.UTC
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *s)
}

func (v *bookingJSON) appendJSON(b []byte) ([]byte, bool) {
	if !inRange(v.CreatedAt) || !inRange(v.UpdatedAt) || (v.ExpiresAt != nil && !inRange(*v.ExpiresAt)) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendUUID(b, v.ID)
	b = append(b, `,"user_id":`...)
	b = appendUUID(b, v.UserID)
	b = append(b, `,"event_id":`...)
	b = appendUUID(b, v.EventID)
	b = append(b, `,"ticket_type":`...)
	b = appendJSONString(b, v.TicketType)
	b = append(b, `,"quantity":`...)
	b = strconv.AppendInt(b, int64(v.Quantity), 10)
	b = append(b, `,"amount":`...)
	b = strconv.AppendInt(b, v.Amount, 10)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, v.Currency)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, v.Status)
	b = append(b, `,"reason":`...)
	b = appendOptString(b, v.Reason)
	b = append(b, `,"expires_at":`...)
	if v.ExpiresAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *v.ExpiresAt)
	}
	b = append(b, `,"payment_id":`...)
	if v.PaymentID == nil {
		b = append(b, "null"...)
	} else {
		b = appendUUID(b, *v.PaymentID)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, v.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, v.UpdatedAt)
	return append(b, '}'), true
}

func (v *bookingListJSON) appendJSON(b []byte) ([]byte, bool) {
	start := len(b)
	b = append(b, `{"items":`...)
	if v.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = v.Items[i].appendJSON(b); !ok {
				return b[:start], false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"next_cursor":`...)
	b = appendOptString(b, v.NextCursor)
	return append(b, '}'), true
}

func (v *paymentJSON) appendJSON(b []byte) ([]byte, bool) {
	if !inRange(v.CreatedAt) || !inRange(v.UpdatedAt) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendUUID(b, v.ID)
	b = append(b, `,"booking_id":`...)
	b = appendUUID(b, v.BookingID)
	b = append(b, `,"amount":`...)
	b = strconv.AppendInt(b, v.Amount, 10)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, v.Currency)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, v.Status)
	b = append(b, `,"failure_reason":`...)
	b = appendOptString(b, v.FailureReason)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, v.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, v.UpdatedAt)
	return append(b, '}'), true
}
