package httpapi

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ParseTrustedProxies parses a comma-separated list of addresses and
// prefixes ("10.0.0.5, 172.28.0.0/16") of the reverse proxies whose
// X-Forwarded-For the server believes.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", item, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", item, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// clientIP is the address of the client a request comes from, for the
// per-address login limit and for logs.
//
// Behind reverse proxies the connection's peer is the last proxy. Its
// X-Forwarded-For is believed only when that peer is one of the trusted
// proxies, and then read from the right: each proxy appends the address it
// got the request from, so the rightmost address that is not itself a
// trusted proxy is the client as the first trusted proxy saw it. Whatever
// a client wrote into the header itself sits to the left of that and is
// never taken. An entry that is not an address ends the walk (a proxy
// that mangles the header is not trusted past that point).
func (s *Server) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.IP()
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	header := c.Request().Header.Peek(fiber.HeaderXForwardedFor)
	client := peer
	for rest := string(header); rest != ""; {
		var entry string
		if i := strings.LastIndexByte(rest, ','); i >= 0 {
			entry, rest = rest[i+1:], rest[:i]
		} else {
			entry, rest = rest, ""
		}
		a, err := netip.ParseAddr(strings.TrimSpace(entry))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !s.trusted(client) {
			break
		}
	}
	return client.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
