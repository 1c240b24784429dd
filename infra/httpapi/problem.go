package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/fault"
)

// problem is an RFC 9457 problem details object.
type problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem types: relative URI references naming each kind of failure.
const (
	typeValidation   = "/problems/validation"
	typeMalformed    = "/problems/malformed-request"
	typeUnauthorized = "/problems/unauthorized"
	typeForbidden    = "/problems/forbidden"
	typeNotFound     = "/problems/not-found"
	typeConflict     = "/problems/conflict"
	typeTooLarge     = "/problems/payload-too-large"
	typeMediaType    = "/problems/unsupported-media-type"
	typeRateLimited  = "/problems/rate-limited"
	typeUnavailable  = "/problems/unavailable"
	typeInternal     = "/problems/internal"
	typeNoRoute      = "/problems/no-such-endpoint"
	typeMethod       = "/problems/method-not-allowed"
	typeNoMethod     = "/problems/method-not-implemented"
)

// apiError is an error the handlers raise with its HTTP answer decided.
type apiError struct {
	problem
	header map[string]string
}

func (e *apiError) Error() string { return e.Title + ": " + e.Detail }

func newError(status int, typ, title, detail string) *apiError {
	return &apiError{problem: problem{Type: typ, Title: title, Status: status, Detail: detail}}
}

func badRequest(detail string) *apiError {
	return newError(fiber.StatusBadRequest, typeMalformed, "Malformed request", detail)
}

func invalid(fields ...fieldError) *apiError {
	e := newError(fiber.StatusBadRequest, typeValidation, "Invalid input", "One or more fields are invalid.")
	e.Errors = fields
	return e
}

func unauthorized(detail string) *apiError {
	e := newError(fiber.StatusUnauthorized, typeUnauthorized, "Unauthorized", detail)
	e.header = map[string]string{fiber.HeaderWWWAuthenticate: `Bearer realm="ticketd"`}
	return e
}

func notFound(detail string) *apiError {
	return newError(fiber.StatusNotFound, typeNotFound, "Not found", detail)
}

// toProblem decides the answer to any error a handler returned. Domain
// refusals are classified through package fault; anything unclassified is
// a 500 whose detail says nothing of the internals (it is logged instead).
func (s *Server) toProblem(c *fiber.Ctx, err error) *apiError {
	if p := classify(err); p != nil {
		return p
	}
	s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "request_id", requestIDOf(c), "err", err)
	return newError(fiber.StatusInternalServerError, typeInternal, "Internal server error", "Something went wrong on our side; it has been logged.")
}

// classify is the answer to a known kind of error, nil for the rest.
func classify(err error) *apiError {
	var api *apiError
	var fe *fiber.Error
	var in *fault.Input
	switch {
	case errors.As(err, &api):
		return api
	case errors.As(err, &in):
		fields := make([]fieldError, len(in.Fields))
		for i, f := range in.Fields {
			fields[i] = fieldError{Field: f.Field, Message: f.Message}
		}
		return invalid(fields...)
	case errors.Is(err, commands.ErrBadCredentials):
		return unauthorized("Invalid email or password.")
	case errors.Is(err, fault.ErrNotFound):
		return notFound(publicMessage(err))
	case errors.Is(err, fault.ErrConflict):
		return newError(fiber.StatusConflict, typeConflict, "Conflict", publicMessage(err))
	case errors.As(err, &fe):
		return fromFiber(fe)
	case errors.Is(err, context.DeadlineExceeded):
		return newError(fiber.StatusServiceUnavailable, typeUnavailable, "Service unavailable", "The request took too long; try again.")
	}
	return nil
}

// statusOf is the status code the error handler answers err with.
func statusOf(err error) int {
	if p := classify(err); p != nil {
		return p.Status
	}
	return fiber.StatusInternalServerError
}

func fromFiber(fe *fiber.Error) *apiError {
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return newError(fe.Code, typeTooLarge, "Payload too large", "The request body is larger than the server accepts.")
	case fiber.StatusNotFound:
		return newError(fe.Code, typeNoRoute, "Not found", "No such endpoint.")
	case fiber.StatusMethodNotAllowed:
		return newError(fe.Code, typeMethod, "Method not allowed", "This endpoint does not accept that method.")
	case fiber.StatusUnsupportedMediaType:
		return newError(fe.Code, typeMediaType, "Unsupported media type", fe.Message)
	}
	if fe.Code >= 500 {
		return newError(fe.Code, typeInternal, "Internal server error", "Something went wrong on our side.")
	}
	return newError(fe.Code, typeMalformed, "Bad request", fe.Message)
}

// publicMessage strips the package prefix of a domain error message:
// "booking: cannot cancel a booking that is rejected" reads well to a
// client, the package name does not.
func publicMessage(err error) string {
	msg := err.Error()
	for {
		head, rest, ok := strings.Cut(msg, ": ")
		if !ok || strings.ContainsAny(head, " ") {
			break
		}
		msg = rest
	}
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// errorHandler writes every error as application/problem+json.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	p := s.toProblem(c, err)
	for k, v := range p.header {
		c.Set(k, v)
	}
	p.Instance = c.Path()
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	body, mErr := json.Marshal(p.problem)
	if mErr != nil {
		s.log.Error("encoding problem", "err", mErr)
		return c.SendString(`{"type":"/problems/internal","title":"Internal server error","status":500}`)
	}
	return c.Send(body)
}
