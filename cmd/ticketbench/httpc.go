package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// A load generator on the same two cores as the server must spend as
// little CPU per request as it can, or it measures itself. The default
// transport ("raw") is therefore a minimal HTTP/1.1 keep-alive client: one
// connection per worker, requests written from a reused buffer, responses
// parsed in place, no per-request goroutines or header maps. The "std"
// transport (net/http with a tuned Transport) is kept to cross-check it.

// request is one HTTP request. Fields are reused between requests by the
// worker that owns them.
type request struct {
	method  string
	path    string // path and query, starting with '/'
	token   string // bearer token, "" for none
	idemKey []byte // Idempotency-Key, nil for none
	body    []byte // JSON body, nil for none
}

// response is what a request answered. Its buffers are reused.
type response struct {
	status   int
	location []byte
	body     []byte
}

// conn sends requests one at a time. It is owned by one goroutine.
type conn interface {
	do(req *request, resp *response) error
	close()
}

// dialer opens conns to one server.
type dialer struct {
	transport string
	addr      string // host:port
	base      string // scheme://host:port
	timeout   time.Duration
	std       *http.Client
}

func newDialer(rawURL, transport string, conns int, timeout time.Duration) (*dialer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("url: only http:// is supported, not %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	d := &dialer{transport: transport, addr: addr, base: "http://" + u.Host, timeout: timeout}
	switch transport {
	case "raw":
	case "std":
		d.std = &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:        conns,
				MaxIdleConnsPerHost: conns,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
				ForceAttemptHTTP2:   false,
			},
		}
	default:
		return nil, fmt.Errorf("transport: want raw or std, not %q", transport)
	}
	return d, nil
}

func (d *dialer) conn() conn {
	if d.std != nil {
		return &stdConn{d: d}
	}
	return &rawConn{d: d}
}

func (d *dialer) closeIdle() {
	if d.std != nil {
		d.std.CloseIdleConnections()
	}
}

// rawConn is one keep-alive connection, redialled when the server closes it.
type rawConn struct {
	d    *dialer
	nc   net.Conn
	br   *bufio.Reader
	wbuf []byte
}

func (c *rawConn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.br = nil, nil
	}
}

// do sends req and reads its response. A request that fails on a reused
// connection (the server may have closed it while idle) is sent once more
// on a new one if that is safe: a GET, or a POST with an Idempotency-Key.
func (c *rawConn) do(req *request, resp *response) error {
	for attempt := 0; ; attempt++ {
		fresh := c.nc == nil
		if fresh {
			nc, err := net.DialTimeout("tcp", c.d.addr, 5*time.Second)
			if err != nil {
				return err
			}
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
			c.nc, c.br = nc, bufio.NewReaderSize(nc, 32<<10)
		}
		err := c.roundTrip(req, resp)
		if err == nil {
			return nil
		}
		c.close()
		if fresh || attempt > 0 || !(req.method == http.MethodGet || req.idemKey != nil) {
			return err
		}
	}
}

func (c *rawConn) roundTrip(req *request, resp *response) error {
	b := append(c.wbuf[:0], req.method...)
	b = append(b, ' ')
	b = append(b, req.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.d.addr...)
	b = append(b, "\r\nUser-Agent: ticketbench\r\nAccept: application/json\r\n"...)
	if req.token != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, req.token...)
		b = append(b, "\r\n"...)
	}
	if req.idemKey != nil {
		b = append(b, "Idempotency-Key: "...)
		b = append(b, req.idemKey...)
		b = append(b, "\r\n"...)
	}
	if req.body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, req.body...)
	c.wbuf = b
	if err := c.nc.SetDeadline(time.Now().Add(c.d.timeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		return err
	}
	return c.readResponse(req, resp)
}

var errMalformed = errors.New("ticketbench: malformed HTTP response")

func (c *rawConn) readResponse(req *request, resp *response) error {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return errMalformed
	}
	status, ok := atoi(line[9:12])
	if !ok {
		return errMalformed
	}
	resp.status = status
	resp.location = resp.location[:0]
	contentLength, chunked, mustClose := -1, false, line[7] == '0'
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return errMalformed
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "Content-Length"):
			n, ok := atoi(value)
			if !ok {
				return errMalformed
			}
			contentLength = n
		case equalFold(name, "Transfer-Encoding"):
			chunked = equalFold(value, "chunked")
		case equalFold(name, "Connection"):
			if equalFold(value, "close") {
				mustClose = true
			}
		case equalFold(name, "Location"):
			resp.location = append(resp.location, value...)
		}
	}
	resp.body = resp.body[:0]
	switch {
	case req.method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || status < 200:
	case chunked:
		if err := c.readChunked(resp); err != nil {
			return err
		}
	case contentLength >= 0:
		resp.body = grow(resp.body, contentLength)
		if _, err := io.ReadFull(c.br, resp.body); err != nil {
			return err
		}
	default:
		mustClose = true
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(c.br); err != nil {
			return err
		}
		resp.body = append(resp.body, buf.Bytes()...)
	}
	if mustClose {
		c.close()
	}
	return nil
}

func (c *rawConn) readChunked(resp *response) error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimSpace(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 32)
		if err != nil || n < 0 {
			return errMalformed
		}
		if n == 0 {
			// Trailers, then the empty line.
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		start := len(resp.body)
		resp.body = grow(resp.body, start+int(n))
		if _, err := io.ReadFull(c.br, resp.body[start:]); err != nil {
			return err
		}
		if _, err := c.br.Discard(2); err != nil {
			return err
		}
	}
}

// stdConn goes through net/http; connections are pooled by its Transport.
type stdConn struct{ d *dialer }

func (c *stdConn) close() {}

func (c *stdConn) do(req *request, resp *response) error {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequest(req.method, c.d.base+req.path, body)
	if err != nil {
		return err
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "ticketbench")
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.idemKey != nil {
		hr.Header.Set("Idempotency-Key", string(req.idemKey))
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	r, err := c.d.std.Do(hr)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	resp.status = r.StatusCode
	resp.location = append(resp.location[:0], r.Header.Get("Location")...)
	buf := bytes.NewBuffer(resp.body[:0])
	_, err = buf.ReadFrom(r.Body)
	resp.body = buf.Bytes()
	return err
}

func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n, max(n, 2*cap(b)))
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// equalFold reports whether b and s are equal ignoring ASCII case, without
// allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
