package httpapi

import (
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

func TestClientIPBelievesOnlyTrustedProxies(t *testing.T) {
	trusted, err := ParseTrustedProxies(" 172.28.0.0/16, 10.0.0.5 ,::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		trusted bool // whether the server has trusted proxies at all
		peer    string
		xff     string
		want    string
	}{
		{"no proxies configured: the peer, whatever the header says", false, "203.0.113.9", "198.51.100.1", "203.0.113.9"},
		{"an untrusted peer cannot name another client", true, "203.0.113.9", "198.51.100.1", "203.0.113.9"},
		{"behind nginx: the address nginx saw", true, "172.28.0.10", "198.51.100.1", "198.51.100.1"},
		{"a client's own header is to the left and ignored", true, "172.28.0.10", "6.6.6.6, 198.51.100.1", "198.51.100.1"},
		{"two trusted proxies in a row", true, "10.0.0.5", "198.51.100.1, 172.28.0.10", "198.51.100.1"},
		{"a garbage entry stops the walk at the last good address", true, "172.28.0.10", "198.51.100.1, not-an-ip", "172.28.0.10"},
		{"no header from a trusted proxy: the proxy itself", true, "172.28.0.10", "", "172.28.0.10"},
		{"IPv6 client behind a local proxy", true, "::1", "2001:db8::7", "2001:db8::7"},
		{"IPv4-mapped IPv6 peer is matched as IPv4", true, "::ffff:172.28.0.10", "198.51.100.1", "198.51.100.1"},
	}
	app := fiber.New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{}
			if tc.trusted {
				s.TrustedProxies = trusted
			}
			var req fasthttp.Request
			req.SetRequestURI("/login")
			if tc.xff != "" {
				req.Header.Set(fiber.HeaderXForwardedFor, tc.xff)
			}
			fctx := &fasthttp.RequestCtx{}
			fctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.peer), Port: 40000}, nil)
			c := app.AcquireCtx(fctx)
			defer app.ReleaseCtx(c)
			if got := s.clientIP(c); got != tc.want {
				t.Fatalf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxiesRefusesNonsense(t *testing.T) {
	for _, bad := range []string{"nginx", "10.0.0.0/33", "10.0.0.1/8/1"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", bad)
		}
	}
	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf("empty list = %v, %v; want none", got, err)
	}
}
