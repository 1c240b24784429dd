package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the real ticketd binary as a separate process
// and talk to it over HTTP, as a client would.

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func ticketdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ticketd-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "ticketd")
		out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// server is one running ticketd process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	base    string
	dataDir string
	env     []string
	logs    *bytes.Buffer
	logMu   *sync.Mutex
	exited  chan struct{}
}

const (
	adminEmail    = "admin@example.com"
	adminPassword = "admin-password-1"
	webhookSecret = "e2e-webhook-secret-0123456789abcdef"
)

func startServer(t *testing.T, dataDir string, extraEnv ...string) *server {
	t.Helper()
	env := append(os.Environ(),
		"TICKETD_HTTP_ADDR=127.0.0.1:0",
		"TICKETD_DATA_DIR="+dataDir,
		"TICKETD_HOLD_TTL=3s",
		"TICKETD_ADMIN_EMAIL="+adminEmail,
		"TICKETD_ADMIN_PASSWORD="+adminPassword,
		"TICKETD_PAYMENT_WEBHOOK_SECRET="+webhookSecret,
		"TICKETD_SANDBOX_SETTLE=50ms",
		"TICKETD_SANDBOX_DELAYED=1500ms",
		"TICKETD_LOG_LEVEL=info",
		"TICKETD_LOGIN_LIMIT_PER_IP=10000",
	)
	env = append(env, extraEnv...)
	s := &server{t: t, dataDir: dataDir, env: env, logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	s.start()
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM)
		if t.Failed() {
			s.report()
		} else if os.Getenv("TICKETD_TEST_LOG_DIR") != "" {
			s.saveLog()
		}
	})
	return s
}

// report logs what a failed test needs to be understood: ticketd's own
// log lines, without librdkafka's chatter about connections (a broker
// restart makes thousands). The whole log goes to a file.
func (s *server) report() {
	s.t.Helper()
	var own strings.Builder
	for line := range strings.Lines(s.logText()) {
		if !isConnectionChatter(line) {
			own.WriteString(line)
		}
	}
	s.t.Logf("ticketd %s logs, its own lines (all of them in %s):\n%s", filepath.Base(s.dataDir), s.saveLog(), own.String())
}

// isConnectionChatter tells librdkafka's own log lines, and the client
// errors ticketd passes on, that only say a broker connection is down.
func isConnectionChatter(line string) bool {
	for _, noise := range []string{`"client":"`, "brokers are down", "Connect to ipv4", "Disconnected"} {
		if strings.Contains(line, noise) {
			return true
		}
	}
	return false
}

// saveLog writes the process's whole log to a file, under
// TICKETD_TEST_LOG_DIR when it is set, and says where.
func (s *server) saveLog() string {
	dir := os.Getenv("TICKETD_TEST_LOG_DIR")
	if dir != "" {
		_ = os.MkdirAll(dir, 0o755)
	}
	name := strings.ReplaceAll(s.t.Name(), "/", "_")
	f, err := os.CreateTemp(dir, name[:min(len(name), 48)]+"-"+filepath.Base(s.dataDir)+"-*.log")
	if err != nil {
		return "nowhere: " + err.Error()
	}
	defer f.Close()
	if _, err := f.WriteString(s.logText()); err != nil {
		return "nowhere: " + err.Error()
	}
	return f.Name()
}

func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(ticketdBinary(s.t))
	s.cmd.Env = s.env
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logMu.Lock()
			s.logs.WriteString(line + "\n")
			s.logMu.Unlock()
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "ticketd listening" {
				addr <- entry.Addr
			}
		}
	}()
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.exited:
		s.t.Fatalf("ticketd exited at start-up:\n%s", s.logText())
	case <-time.After(60 * time.Second):
		s.t.Fatalf("ticketd did not start:\n%s", s.logText())
	}
}

func (s *server) stop(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// restart kills the process with SIGKILL (no shutdown at all) and starts
// it again on the same data directory.
func (s *server) crashAndRestart() {
	s.stop(syscall.SIGKILL)
	s.start()
}

func (s *server) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logs.String()
}

// response is an HTTP answer with its JSON decoded.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

type client struct {
	t     *testing.T
	s     *server
	token string
}

func (s *server) anon(t *testing.T) *client { return &client{t: t, s: s} }

func (c *client) do(method, path string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.s.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect checks the status and returns the decoded object.
func (c *client) expect(status int, method, path string, body any, headers ...string) map[string]any {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.status != status {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(c.t)
}

// expectProblem checks an error answer is problem+json with that status.
func (c *client) expectProblem(status int, method, path string, body any, headers ...string) map[string]any {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.status != status {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		c.t.Fatalf("%s %s: content type %q, want application/problem+json", method, path, ct)
	}
	p := r.json(c.t)
	if p["status"] != float64(status) || p["title"] == "" || p["type"] == "" {
		c.t.Fatalf("%s %s: not a problem document: %s", method, path, r.body)
	}
	return p
}

var userSeq struct {
	sync.Mutex
	n int
}

// customer registers and logs in a new customer.
func (s *server) customer(t *testing.T) *client {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	email := fmt.Sprintf("customer%d-%d@example.com", userSeq.n, time.Now().UnixNano())
	userSeq.Unlock()
	c := s.anon(t)
	c.expect(201, "POST", "/register", map[string]any{"email": email, "password": "correct horse", "name": "Customer"})
	return s.login(t, email, "correct horse")
}

func (s *server) login(t *testing.T, email, password string) *client {
	t.Helper()
	c := s.anon(t)
	tok := c.expect(200, "POST", "/login", map[string]any{"email": email, "password": password})
	c.token = tok["access_token"].(string)
	return c
}

func (s *server) admin(t *testing.T) *client { return s.login(t, adminEmail, adminPassword) }

// eventually polls until cond holds; it waits for asynchronous work and
// measures nothing. The bound is generous: after a fault (a killed
// service's consumer group waits out its session) recovery takes seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWhy(t, time.Minute, what, func() (bool, string) { return cond(), "" })
}

// eventuallyWhy is eventually with a time limit and a condition that also
// says, when it is not met, what is missing; the last such word goes into
// the failure.
func eventuallyWhy(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s: %s", what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *client) waitBooking(id, status string) map[string]any {
	c.t.Helper()
	var b map[string]any
	eventually(c.t, "booking "+id+" is "+status, func() bool {
		b = c.expect(200, "GET", "/bookings/"+id, nil)
		return b["status"] == status
	})
	return b
}

func (c *client) waitPayment(id, status string) map[string]any {
	c.t.Helper()
	var p map[string]any
	eventually(c.t, "payment "+id+" is "+status, func() bool {
		p = c.expect(200, "GET", "/payment/status/"+id, nil)
		return p["status"] == status
	})
	return p
}

func available(ev map[string]any, ticketType string) int {
	for _, tt := range ev["ticket_types"].([]any) {
		m := tt.(map[string]any)
		if m["name"] == ticketType {
			return int(m["available"].(float64))
		}
	}
	return -1
}

func (c *client) waitAvailable(eventID, ticketType string, want int) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("event %s has %d %s available", eventID, want, ticketType), func() bool {
		return available(c.expect(200, "GET", "/events/"+eventID, nil), ticketType) == want
	})
}

func newEvent(name string, capacity int) map[string]any {
	return map[string]any{
		"name": name, "description": "An evening", "venue": "Jakarta Hall",
		"starts_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"currency":  "IDR", "max_per_booking": 5,
		"ticket_types": []map[string]any{{"name": "general", "price": 150000, "capacity": capacity}, {"name": "vip", "price": 500000, "capacity": 5}},
	}
}
