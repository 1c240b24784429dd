package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRawConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Content-Type", "text/plain")
			fl := w.(http.Flusher)
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				fl.Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Location", "/bookings/"+r.Header.Get("Idempotency-Key"))
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, "%s %s auth=%q ct=%q body=%s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body)
		}
	}))
	defer srv.Close()

	for _, transport := range []string{"raw", "std"} {
		t.Run(transport, func(t *testing.T) {
			d, err := newDialer(srv.URL, transport, 4, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := d.conn()
			defer c.close()
			var resp response
			tests := []struct {
				name               string
				req                request
				status             int
				body, location     string
				bodyHasNoSubstring string
			}{
				{
					name:     "post with key and token",
					req:      request{method: "POST", path: "/booking/create?x=1", token: "tok", idemKey: []byte("k1"), body: []byte(`{"a":1}`)},
					status:   202,
					location: "/bookings/k1",
					body:     `POST /booking/create?x=1 auth="Bearer tok" ct="application/json" body={"a":1}`,
				},
				{name: "chunked", req: request{method: "GET", path: "/chunked"}, status: 200, body: "part0;part1;part2;"},
				{name: "no content", req: request{method: "GET", path: "/empty"}, status: 204, body: ""},
				{name: "server closes", req: request{method: "GET", path: "/close"}, status: 200, body: "bye"},
				{name: "after close", req: request{method: "GET", path: "/x"}, status: 202, body: `GET /x auth="" ct="" body=`},
			}
			for _, tc := range tests {
				if err := c.do(&tc.req, &resp); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if resp.status != tc.status || string(resp.body) != tc.body {
					t.Errorf("%s: got %d %q, want %d %q", tc.name, resp.status, resp.body, tc.status, tc.body)
				}
				if tc.location != "" && string(resp.location) != tc.location {
					t.Errorf("%s: location %q, want %q", tc.name, resp.location, tc.location)
				}
			}
		})
	}
}

func TestRawConnRetriesIdleClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	d, _ := newDialer(srv.URL, "raw", 1, 5*time.Second)
	c := d.conn()
	defer c.close()
	var resp response
	if err := c.do(&request{method: "GET", path: "/"}, &resp); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // as a server closing an idle connection
	if err := c.do(&request{method: "GET", path: "/"}, &resp); err != nil || string(resp.body) != "ok" {
		t.Fatalf("after the server closed the idle connection: %v %q", err, resp.body)
	}
}

func TestHistQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h hist
	var all []time.Duration
	for range 100_000 {
		d := time.Duration(r.ExpFloat64() * float64(3*time.Millisecond))
		all = append(all, d)
		h.record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%.3f: %v, exact %v", q, got, exact)
		}
	}
	if h.quantile(1) != all[len(all)-1] {
		t.Errorf("max %v, want %v", h.quantile(1), all[len(all)-1])
	}
	for _, v := range []uint64{0, 1, 255, 256, 257, 1 << 20, 1<<40 - 1, 1 << 50} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("index of %d: %d out of range", v, i)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{name: "defaults", args: nil},
		{name: "listing", args: []string{"-scenario", "listing", "-duration", "2s"}},
		{name: "bad scenario", args: []string{"-scenario", "x"}, err: "-scenario"},
		{name: "bad quantity", args: []string{"-quantity", "0"}, err: "-quantity"},
	}
	for _, tc := range tests {
		c, err := parseFlags(tc.args, io.Discard)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if c.Customers != c.Clients {
				t.Errorf("%s: customers %d, want clients %d", tc.name, c.Customers, c.Clients)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.err)
		}
	}
}
