package httpapi

import (
	"encoding/json"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// guardMethods answers a request whose method the server does not know at
// all (QUERY, BREW, ...) with a problem: Fiber answers those itself, before
// any handler or the error handler runs, with a plain-text 400. RFC 9110
// (15.6.2) makes 501 the answer to an unrecognised method; a known method
// that a route does not take stays a 405, from the error handler.
func (s *Server) guardMethods() {
	srv := s.app.Server()
	next := srv.Handler
	known := s.app.Config().RequestMethods
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		if slices.Contains(known, string(ctx.Method())) {
			next(ctx)
			return
		}
		body, _ := json.Marshal(problem{
			Type: typeNoMethod, Title: "Method not implemented", Status: fiber.StatusNotImplemented,
			Detail:   "This server does not know the method " + string(ctx.Method()) + ".",
			Instance: string(ctx.Path()),
		})
		ctx.Response.Header.SetContentType("application/problem+json")
		ctx.SetStatusCode(fiber.StatusNotImplemented)
		ctx.SetBody(body)
	}
}
