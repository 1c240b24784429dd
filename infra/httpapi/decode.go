package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// decode reads a JSON body into dst strictly: the content type must be
// JSON, unknown fields and trailing data are refused, and a value of the
// wrong type names the field. Nothing about a bad body ever becomes a 500.
func decode(c *fiber.Ctx, dst any) error {
	ct := c.Get(fiber.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != fiber.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
		return newError(fiber.StatusUnsupportedMediaType, typeMediaType, "Unsupported media type", "Send the body as application/json.")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("The request body is empty; a JSON object is expected.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("The request body has data after the JSON object.")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest(fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("The body is not valid JSON (it ends too early).")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("The body must be a JSON object.")
		}
		return invalid(fieldError{Field: typ.Field, Message: "must be " + jsonKind(typ.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(fieldError{Field: name, Message: "is not a known field"})
	}
	return badRequest("The body could not be read as the expected JSON object.")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "of another type"
}

// fields collects field errors while a request's values are parsed.
type fields []fieldError

func (f *fields) add(field, message string) {
	*f = append(*f, fieldError{Field: field, Message: message})
}

func (f fields) err() error {
	if len(f) == 0 {
		return nil
	}
	return invalid(f...)
}

// uuidField parses a required UUID.
func (f *fields) uuidField(name, s string) uuid.UUID {
	if s == "" {
		f.add(name, "is required")
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		f.add(name, "must be a UUID")
		return uuid.Nil
	}
	return id
}

// timeField parses an optional RFC 3339 timestamp; nil when absent.
func (f *fields) timeField(name string, s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		f.add(name, "must be an RFC 3339 timestamp such as 2026-12-31T19:00:00Z")
		return nil
	}
	t = t.UTC()
	return &t
}

// pathID parses the {id} of a path; a malformed id is simply not found.
func pathID(c *fiber.Ctx, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return uuid.Nil, notFound("No " + what + " has that id.")
	}
	return id, nil
}
