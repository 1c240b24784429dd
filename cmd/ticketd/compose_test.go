package main

// These tests read docker-compose.yml, deploy/nginx.conf and the Dockerfile
// as Docker would, and check them against ticketd itself, since Docker
// cannot run here. Each service is checked with ticketd's own configuration
// loader (loadConfig) on the environment the container would have. nginx's
// routing is checked against every path of the OpenAPI document that
// ticketd serves, using nginx's rules for choosing a location.

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/ticketd/ticketing/infra/httpapi"
)

const repoRoot = "../.."

// --- docker-compose.yml ---

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Networks map[string]composeNetwork `yaml:"networks"`
}

type composeNetwork struct {
	IPAM struct {
		Config []struct {
			Subnet string `yaml:"subnet"`
		} `yaml:"config"`
	} `yaml:"ipam"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     any            `yaml:"command"`
	Environment composeEnv     `yaml:"environment"`
	DependsOn   composeDeps    `yaml:"depends_on"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	Networks    map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"networks"`
}

// composeEnv is a service's environment, in either of compose's forms (a
// mapping, or a list of NAME=value), with scalar values as strings.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			(*e)[k] = fmt.Sprint(v)
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
	default:
		return fmt.Errorf("environment: want a mapping or a list, line %d", n.Line)
	}
	return nil
}

// composeDeps is depends_on, in either form, as service → condition
// ("service_started" for the list form).
type composeDeps map[string]string

func (d *composeDeps) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDeps{}
	switch n.Kind {
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for s, c := range m {
			if c.Condition == "" {
				c.Condition = "service_started"
			}
			(*d)[s] = c.Condition
		}
	default:
		return fmt.Errorf("depends_on: want a list or a mapping, line %d", n.Line)
	}
	return nil
}

// interpolate does what compose does to ${NAME:-default}, ${NAME-default},
// ${NAME:?message}, ${NAME} and $$ before parsing, with env as the
// environment. A variable without a default that env lacks is an error:
// `docker compose up` must work on a machine where none is set.
func interpolate(text string, env map[string]string) (string, error) {
	var errs []string
	re := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	out := re.ReplaceAllStringFunc(text, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := re.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		if name == "" {
			name = g[4]
		}
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if !set || (op == ":?" && v == "") {
				errs = append(errs, fmt.Sprintf("%s is required (%s)", name, arg))
			}
		default:
			if !set {
				errs = append(errs, fmt.Sprintf("${%s} has no default", name))
			}
		}
		return v
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("interpolation: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func loadCompose(t *testing.T, env map[string]string) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := interpolate(string(raw), env)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var f composeFile
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml defines no services")
	}
	return f
}

// --- Dockerfile ---

type dockerfile struct {
	env         map[string]string // ENV of the final stage
	healthcheck bool              // the final stage has a HEALTHCHECK
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var d dockerfile
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM": // a new stage: only the last one is the image
			d = dockerfile{env: map[string]string{}}
		case "ENV":
			for _, kv := range f[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %s: use the NAME=value form", kv)
				}
				d.env[k] = strings.Trim(v, `"`)
			}
		case "HEALTHCHECK":
			d.healthcheck = len(f) > 1 && !strings.EqualFold(f[1], "NONE")
		}
	}
	return d
}

// --- ticketd's configuration ---

// recognisedVariables is every variable ticketd's configuration reads,
// found by running loadConfig with an environment that notes each lookup.
func recognisedVariables(t *testing.T) map[string]bool {
	t.Helper()
	read := map[string]bool{}
	loadConfig(nil, func(name string) string { read[name] = true; return "" })
	if len(read) < 10 || !read["TICKETD_SERVICES"] || !read["TICKETD_EVENTSTORE_URL"] {
		t.Fatalf("loadConfig read only %v: the lookup recorder no longer sees its variables", read)
	}
	return read
}

// ticketdService is one container of the compose file that runs ticketd.
type ticketdService struct {
	name string
	svc  composeService
	env  map[string]string // the container's: the image's ENV, then compose's
	cfg  *Config
}

// httpPort is the port ticketd listens on in the container.
func (s ticketdService) httpPort(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(s.cfg.HTTPAddr)
	if err != nil {
		t.Fatalf("%s: TICKETD_HTTP_ADDR %q: %v", s.name, s.cfg.HTTPAddr, err)
	}
	return port
}

// ticketdServices returns the services built from this repository's
// Dockerfile, each with the configuration ticketd would load in it.
func ticketdServices(t *testing.T, f composeFile, d dockerfile) []ticketdService {
	t.Helper()
	var out []ticketdService
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		svc := f.Services[name]
		if svc.Build == nil {
			continue
		}
		if ctx := buildContext(svc.Build); ctx != "." {
			t.Fatalf("%s builds from %q; want this repository (.)", name, ctx)
		}
		env := map[string]string{}
		for k, v := range d.env {
			env[k] = v
		}
		for k, v := range svc.Environment {
			env[k] = v
		}
		cfg, err := loadConfig(nil, func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("ticketd refuses the configuration of %s: %v", name, err)
		}
		out = append(out, ticketdService{name: name, svc: svc, env: env, cfg: cfg})
	}
	if len(out) == 0 {
		t.Fatal("no service of docker-compose.yml builds ticketd")
	}
	return out
}

func buildContext(b any) string {
	switch b := b.(type) {
	case string:
		return b
	case map[string]any:
		if c, ok := b["context"].(string); ok {
			return c
		}
	}
	return ""
}

// --- nginx ---

// ngxDirective is one directive of an nginx configuration, with its block
// if it has one.
type ngxDirective struct {
	name  string
	args  []string
	block []ngxDirective
	line  int
}

func (d ngxDirective) find(name string) []ngxDirective {
	var out []ngxDirective
	for _, c := range d.block {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// parseNginx parses nginx's configuration syntax: directives ended by ";"
// or followed by a block in braces, "#" comments, single and double
// quotes.
func parseNginx(t *testing.T, text string) ngxDirective {
	t.Helper()
	type token struct {
		s    string
		word bool
		line int
	}
	var toks []token
	line := 1
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, token{string(c), false, line})
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(text[i+1:], c)
			if j < 0 {
				t.Fatalf("nginx.conf:%d: unterminated quote", line)
			}
			s := text[i+1 : i+1+j]
			line += strings.Count(s, "\n")
			toks = append(toks, token{s, true, line})
			i += j + 2
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n{};#", rune(text[j])) {
				j++
			}
			toks = append(toks, token{text[i:j], true, line})
			i = j
		}
	}
	var parse func(depth int) []ngxDirective
	pos := 0
	parse = func(depth int) []ngxDirective {
		var out []ngxDirective
		for pos < len(toks) {
			tk := toks[pos]
			if !tk.word {
				if tk.s == "}" && depth > 0 {
					pos++
					return out
				}
				t.Fatalf("nginx.conf:%d: unexpected %q", tk.line, tk.s)
			}
			d := ngxDirective{name: tk.s, line: tk.line}
			pos++
			for pos < len(toks) && toks[pos].word {
				d.args = append(d.args, toks[pos].s)
				pos++
			}
			if pos == len(toks) {
				t.Fatalf("nginx.conf:%d: %s is not ended", d.line, d.name)
			}
			switch toks[pos].s {
			case ";":
				pos++
			case "{":
				pos++
				d.block = parse(depth + 1)
			default:
				t.Fatalf("nginx.conf:%d: unexpected %q", toks[pos].line, toks[pos].s)
			}
			out = append(out, d)
		}
		if depth > 0 {
			t.Fatal("nginx.conf: a block is not closed")
		}
		return out
	}
	return ngxDirective{name: "main", block: parse(0)}
}

// matchLocation chooses the location of server that serves path, by
// nginx's rules: an exact (=) match; else the longest prefix, unless it
// is marked ^~ and regular expressions (~, ~*) are tried first, in order,
// the first match winning over the prefix.
func matchLocation(t *testing.T, server ngxDirective, path string) (ngxDirective, bool) {
	t.Helper()
	var (
		prefix    ngxDirective
		prefixLen = -1
		noRegex   bool
		regexes   []ngxDirective
	)
	for _, loc := range server.find("location") {
		switch {
		case len(loc.args) == 2 && loc.args[0] == "=":
			if loc.args[1] == path {
				return loc, true
			}
		case len(loc.args) == 2 && (loc.args[0] == "~" || loc.args[0] == "~*"):
			regexes = append(regexes, loc)
		case len(loc.args) == 2 && loc.args[0] == "^~":
			if strings.HasPrefix(path, loc.args[1]) && len(loc.args[1]) > prefixLen {
				prefix, prefixLen, noRegex = loc, len(loc.args[1]), true
			}
		case len(loc.args) == 1 && strings.HasPrefix(loc.args[0], "@"): // named
		case len(loc.args) == 1:
			if strings.HasPrefix(path, loc.args[0]) && len(loc.args[0]) > prefixLen {
				prefix, prefixLen, noRegex = loc, len(loc.args[0]), false
			}
		default:
			t.Fatalf("nginx.conf:%d: location %v is not understood by this test", loc.line, loc.args)
		}
	}
	if !noRegex {
		for _, loc := range regexes {
			expr := loc.args[1]
			if loc.args[0] == "~*" {
				expr = "(?i)" + expr
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				t.Fatalf("nginx.conf:%d: %v", loc.line, err)
			}
			if re.MatchString(path) {
				return loc, true
			}
		}
	}
	return prefix, prefixLen >= 0
}

// directive returns the arguments of directive name in loc, if it is there.
func directive(loc ngxDirective, name string) ([]string, bool) {
	for _, d := range loc.block {
		if d.name == name {
			return d.args, true
		}
	}
	return nil, false
}

type gateway struct {
	name      string // the compose service running nginx
	conf      ngxDirective
	http      ngxDirective
	server    ngxDirective
	upstreams map[string]ngxDirective
}

func loadGateway(t *testing.T, f composeFile) gateway {
	t.Helper()
	var name string
	for n, s := range f.Services {
		if strings.HasPrefix(s.Image, "nginx:") {
			if name != "" {
				t.Fatalf("two nginx services, %s and %s", name, n)
			}
			name = n
		}
	}
	if name == "" {
		t.Fatal("docker-compose.yml runs no nginx in front of the services")
	}
	var conf string
	for _, v := range f.Services[name].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == "/etc/nginx/nginx.conf" {
			conf = parts[0]
		}
	}
	if conf != "./deploy/nginx.conf" {
		t.Fatalf("%s mounts %q as /etc/nginx/nginx.conf, want ./deploy/nginx.conf", name, conf)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	g := gateway{name: name, conf: parseNginx(t, string(raw)), upstreams: map[string]ngxDirective{}}
	https := g.conf.find("http")
	if len(https) != 1 {
		t.Fatalf("nginx.conf has %d http blocks, want 1", len(https))
	}
	g.http = https[0]
	servers := g.http.find("server")
	if len(servers) != 1 {
		t.Fatalf("nginx.conf has %d server blocks, want 1", len(servers))
	}
	g.server = servers[0]
	for _, u := range g.http.find("upstream") {
		g.upstreams[u.args[0]] = u
	}
	return g
}

// proxiedTo returns the compose service and port that loc proxies to.
func (g gateway) proxiedTo(t *testing.T, loc ngxDirective) (service, port string, ok bool) {
	t.Helper()
	args, ok := directive(loc, "proxy_pass")
	if !ok {
		return "", "", false
	}
	u, err := url.Parse(args[0])
	if err != nil || u.Scheme != "http" {
		t.Fatalf("nginx.conf:%d: proxy_pass %v: want http://<upstream>", loc.line, args)
	}
	up, ok := g.upstreams[u.Host]
	if !ok {
		t.Fatalf("nginx.conf:%d: proxy_pass to %q, which is no upstream", loc.line, u.Host)
	}
	servers := up.find("server")
	if len(servers) != 1 {
		t.Fatalf("nginx.conf:%d: upstream %s has %d servers, want 1", up.line, u.Host, len(servers))
	}
	host, port, err := net.SplitHostPort(servers[0].args[0])
	if err != nil {
		t.Fatalf("nginx.conf:%d: %v", servers[0].line, err)
	}
	return host, port, true
}

// --- the tests ---

// Every service of the compose file that runs ticketd gets a
// configuration ticketd accepts, sets only variables ticketd reads, and
// reaches the servers of the file it is pointed at.
func TestComposeTicketdServices(t *testing.T) {
	f := loadCompose(t, nil)
	d := loadDockerfile(t)
	known := recognisedVariables(t)
	services := ticketdServices(t, f, d)

	runs := map[string][]string{} // ticketd service → containers running it
	for _, s := range services {
		for _, name := range slices.Sorted(maps.Keys(s.svc.Environment)) {
			if strings.HasPrefix(name, "TICKETD_") && !known[name] {
				t.Errorf("%s sets %s, which ticketd does not read", s.name, name)
			}
		}
		for name := range d.env {
			if strings.HasPrefix(name, "TICKETD_") && !known[name] {
				t.Errorf("the Dockerfile sets %s, which ticketd does not read", name)
			}
		}
		for _, r := range s.cfg.Services {
			runs[r] = append(runs[r], s.name)
		}
		if len(s.cfg.Services) != 1 {
			t.Errorf("%s runs %v: one service per container, so that each scales and restarts alone", s.name, s.cfg.Services)
		}
		if !s.cfg.Distributed() {
			t.Errorf("%s is not in the distributed mode (TICKETD_KAFKA_BROKERS)", s.name)
		}
		if s.cfg.EventStoreURL == "" {
			t.Errorf("%s keeps its streams in an embedded store; the stack's event store is KurrentDB (TICKETD_EVENTSTORE_URL)", s.name)
		}
	}
	for _, svc := range AllServices {
		n := len(runs[svc])
		switch {
		case n == 0:
			t.Errorf("no container runs the %s service", svc)
		case n > 1 && svc != "projector":
			// Two relays of one service fence each other in Kafka.
			t.Errorf("the %s service runs in %d containers %v, want one", svc, n, runs[svc])
		}
	}

	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			cfg := s.cfg
			// Every server it uses is a service of the file, started
			// healthy before it.
			needs := func(what, host, port string) composeService {
				t.Helper()
				target, ok := f.Services[host]
				if !ok {
					t.Fatalf("%s points at %s, which is no service of the file", what, host)
				}
				if cond := s.svc.DependsOn[host]; cond != "service_healthy" {
					t.Errorf("%s: depends_on %s is %q, want service_healthy: ticketd gives up if it is not there at start", what, host, cond)
				}
				return target
			}

			esdbURL := cfg.EventStoreURL
			for _, from := range []string{"kurrentdb+discover", "kurrentdb"} {
				if rest, ok := strings.CutPrefix(esdbURL, from+"://"); ok {
					esdbURL = strings.Replace(from, "kurrentdb", "esdb", 1) + "://" + rest
					break
				}
			}
			ec, err := esdb.ParseConnectionString(esdbURL)
			if err != nil {
				t.Fatalf("TICKETD_EVENTSTORE_URL: %v", err)
			}
			host, port, err := net.SplitHostPort(ec.Address)
			if err != nil {
				t.Fatalf("TICKETD_EVENTSTORE_URL address %q: %v", ec.Address, err)
			}
			kdb := needs("TICKETD_EVENTSTORE_URL", host, port)
			if want := envOr(kdb.Environment, "KURRENTDB_NODE_PORT", "2113"); port != want {
				t.Errorf("TICKETD_EVENTSTORE_URL port %s, but %s listens on %s", port, host, want)
			}
			if insecure := strings.EqualFold(kdb.Environment["KURRENTDB_INSECURE"], "true"); insecure != ec.DisableTLS {
				t.Errorf("TICKETD_EVENTSTORE_URL has tls disabled = %v, but %s runs with KURRENTDB_INSECURE=%q", ec.DisableTLS, host, kdb.Environment["KURRENTDB_INSECURE"])
			}

			for _, b := range strings.Split(cfg.KafkaBrokers, ",") {
				host, port, err := net.SplitHostPort(strings.TrimSpace(b))
				if err != nil {
					t.Fatalf("TICKETD_KAFKA_BROKERS %q: %v", b, err)
				}
				k := needs("TICKETD_KAFKA_BROKERS", host, port)
				if adv := k.Environment["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(","+adv+",", "://"+host+":"+port+",") {
					t.Errorf("TICKETD_KAFKA_BROKERS %s:%s is not among the listeners %s advertises (%q): clients would be sent elsewhere", host, port, host, adv)
				}
			}

			ro, err := redis.ParseURL(cfg.RedisURL)
			if err != nil {
				t.Fatalf("TICKETD_REDIS_URL: %v", err)
			}
			host, port, _ = net.SplitHostPort(ro.Addr)
			r := needs("TICKETD_REDIS_URL", host, port)
			if want := redisPort(r); port != want {
				t.Errorf("TICKETD_REDIS_URL port %s, but %s listens on %s", port, host, want)
			}

			if cfg.AdminEmail != "" && !cfg.Runs("users") {
				t.Errorf("TICKETD_ADMIN_EMAIL is set where the users service does not run: ticketd bootstraps the admin only with it")
			}
			if cfg.Runs("payments") {
				u, err := url.Parse(cfg.WebhookURL)
				if err != nil || u.Hostname() != s.name || u.Port() != s.httpPort(t) || u.Path != "/payment/status" {
					t.Errorf("TICKETD_PAYMENT_WEBHOOK_URL %q: want http://%s:%s/payment/status, the payments service itself (the default, loopback, is right only outside containers)", cfg.WebhookURL, s.name, s.httpPort(t))
				}
			}

			// What ticketd keeps in its data directory in this
			// configuration (run.go, platform.go) must outlive the
			// container; and a volume where nothing is kept would
			// suggest state that is not there.
			var kept []string
			if cfg.EventStoreURL == "" {
				kept = append(kept, "the embedded event store")
			}
			if !cfg.Distributed() {
				kept = append(kept, "the embedded read models and checkpoints")
			}
			if cfg.JWTSecret == "" || cfg.WebhookSecret == "" {
				kept = append(kept, "generated secrets")
			}
			if cfg.Runs("payments") {
				kept = append(kept, "the sandbox gateway's ledger")
			}
			mounted := false
			for _, v := range s.svc.Volumes {
				if parts := strings.Split(v, ":"); len(parts) >= 2 && filepath.Clean(parts[1]) == filepath.Clean(cfg.DataDir) {
					mounted = true
				}
			}
			switch {
			case len(kept) > 0 && !mounted:
				t.Errorf("ticketd keeps %s in %s, and no volume is mounted there", strings.Join(kept, ", "), cfg.DataDir)
			case len(kept) == 0 && mounted:
				t.Errorf("a volume is mounted on %s, where ticketd keeps nothing in this configuration", cfg.DataDir)
			}
		})
	}

	// A container whose service joins consumer groups (every one but
	// users, and the projector, which reads the log by assignment) is a
	// static member, so that a restart takes its partitions back at once.
	// (One container per service, above, keeps each id to one process.)
	for _, s := range services {
		if s.cfg.InstanceID == "" && !s.cfg.Runs("users") && !s.cfg.Runs("projector") {
			t.Errorf("%s sets no TICKETD_INSTANCE_ID: after a restart its consumer groups wait out its dead self's session", s.name)
		}
	}

	// Tokens issued by users are checked by every service, and the
	// webhook the sandbox gateway signs is checked by payments: the
	// secrets must be the same everywhere.
	for _, secret := range []struct {
		name string
		get  func(*Config) string
	}{
		{"TICKETD_JWT_SECRET", func(c *Config) string { return c.JWTSecret }},
		{"TICKETD_PAYMENT_WEBHOOK_SECRET", func(c *Config) string { return c.WebhookSecret }},
	} {
		values := map[string][]string{}
		for _, s := range services {
			values[secret.get(s.cfg)] = append(values[secret.get(s.cfg)], s.name)
		}
		if len(values) != 1 {
			t.Errorf("%s differs between services: %v", secret.name, values)
		}
		if _, empty := values[""]; empty {
			t.Errorf("%s is unset: each container would generate its own", secret.name)
		}
	}
}

// The secrets and the bootstrap admin come from the environment of
// `docker compose`, with defaults for a machine of one's own.
func TestComposeTakesSecretsFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"TICKETD_JWT_SECRET":             "jwt-from-env",
		"TICKETD_PAYMENT_WEBHOOK_SECRET": "webhook-from-env",
		"TICKETD_ADMIN_EMAIL":            "ops@example.com",
		"TICKETD_ADMIN_PASSWORD":         "from-env-password",
	}
	f := loadCompose(t, env)
	for _, s := range ticketdServices(t, f, loadDockerfile(t)) {
		if s.cfg.JWTSecret != "jwt-from-env" || s.cfg.WebhookSecret != "webhook-from-env" {
			t.Errorf("%s does not take its secrets from the environment: %q, %q", s.name, s.cfg.JWTSecret, s.cfg.WebhookSecret)
		}
		if s.cfg.Runs("users") && (s.cfg.AdminEmail != "ops@example.com" || s.cfg.AdminPassword != "from-env-password") {
			t.Errorf("%s does not take the bootstrap admin from the environment: %q", s.name, s.cfg.AdminEmail)
		}
	}
}

func envOr(env composeEnv, name, def string) string {
	if v, ok := env[name]; ok && v != "" {
		return v
	}
	return def
}

// redisPort is the port a redis service listens on: --port in its command,
// else 6379.
func redisPort(s composeService) string {
	var args []string
	switch c := s.Command.(type) {
	case string:
		args = strings.Fields(c)
	case []any:
		for _, a := range c {
			args = append(args, fmt.Sprint(a))
		}
	}
	for i, a := range args {
		if a == "--port" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return "6379"
}

// Every service, volume and port the file names is consistent: depends_on
// names services of the file, waits on health only where there is a
// health check, named volumes are declared and used, bind mounts exist,
// host ports are not taken twice.
func TestComposeReferences(t *testing.T) {
	f := loadCompose(t, nil)
	d := loadDockerfile(t)
	used := map[string]bool{}
	hostPorts := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		s := f.Services[name]
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s has neither an image nor a build", name)
		}
		for dep, cond := range s.DependsOn {
			target, ok := f.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is no service of the file", name, dep)
				continue
			}
			if dep == name {
				t.Errorf("%s depends on itself", name)
			}
			healthy := target.Healthcheck != nil || (target.Build != nil && d.healthcheck)
			if cond == "service_healthy" && !healthy {
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[1], "/") {
				t.Errorf("%s: volume %q: want source:/container/path", name, v)
				continue
			}
			src := parts[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
				continue
			}
			if _, ok := f.Volumes[src]; !ok {
				t.Errorf("%s mounts the volume %s, which the file does not declare", name, src)
			}
			used[src] = true
		}
		for _, p := range s.Ports {
			hostPart := p
			if i := strings.LastIndex(p, ":"); i >= 0 {
				hostPart = p[:i]
			} else {
				t.Errorf("%s publishes %q on a random host port; name it", name, p)
				continue
			}
			hp := hostPart
			if i := strings.LastIndex(hostPart, ":"); i >= 0 {
				hp = hostPart[i+1:]
			}
			if _, err := strconv.Atoi(hp); err != nil {
				t.Errorf("%s: port %q: %v", name, p, err)
			}
			if other, taken := hostPorts[hp]; taken {
				t.Errorf("%s and %s both publish host port %s", other, name, hp)
			}
			hostPorts[hp] = name
		}
	}
	for v := range f.Volumes {
		if !used[v] {
			t.Errorf("the volume %s is declared and mounted nowhere", v)
		}
	}
}

// nginx sends every path of the API to the service that serves it.
func TestComposeGatewayRoutesEveryPathToItsService(t *testing.T) {
	f := loadCompose(t, nil)
	services := ticketdServices(t, f, loadDockerfile(t))
	g := loadGateway(t, f)
	byName := map[string]ticketdService{}
	for _, s := range services {
		byName[s.name] = s
	}

	var doc struct {
		Paths map[string]map[string]struct {
			Tags []string `yaml:"tags"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(httpapi.OpenAPIDocument, &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	if len(doc.Paths) < 15 {
		t.Fatalf("the OpenAPI document has %d paths; is it still the whole API?", len(doc.Paths))
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		for method, op := range doc.Paths[path] {
			if len(op.Tags) != 1 {
				t.Errorf("%s %s has tags %v; want the one service that serves it", method, path, op.Tags)
				continue
			}
			owner := op.Tags[0]
			concrete := param.ReplaceAllString(path, uuid.NewString())
			loc, ok := matchLocation(t, g.server, concrete)
			if !ok {
				t.Errorf("%s %s: no location of nginx.conf matches %s", method, path, concrete)
				continue
			}
			svc, port, proxied := g.proxiedTo(t, loc)
			if owner == "operations" {
				checkOperation(t, g, path, loc, svc, proxied, byName)
				continue
			}
			if !slices.Contains(AllServices, owner) {
				t.Errorf("%s %s is tagged %q, which is no ticketd service", method, path, owner)
				continue
			}
			if !proxied {
				t.Errorf("%s %s: nginx.conf:%d answers it itself, want it proxied to %s", method, path, loc.line, owner)
				continue
			}
			target, ok := byName[svc]
			if !ok {
				t.Errorf("%s %s goes to %s:%s, which is no ticketd service of the compose file", method, path, svc, port)
				continue
			}
			if !target.cfg.Runs(owner) {
				t.Errorf("%s %s goes to %s, which runs %v, not %s", method, path, svc, target.cfg.Services, owner)
			}
			if port != target.httpPort(t) {
				t.Errorf("%s %s goes to %s:%s, but ticketd listens there on %s", method, path, svc, port, target.httpPort(t))
			}
			if _, ok := f.Services[g.name].DependsOn[svc]; !ok {
				t.Errorf("the gateway does not depend on %s, which serves %s", svc, path)
			}
			if strings.HasSuffix(path, "/stream") {
				if args, _ := directive(loc, "proxy_buffering"); !slices.Equal(args, []string{"off"}) {
					t.Errorf("%s is server-sent events, but nginx.conf:%d buffers it (proxy_buffering %v)", path, loc.line, args)
				}
			}
		}
	}
}

// checkOperation checks the operational endpoints, which every process
// serves for itself: the gateway answers its own liveness, serves the one
// OpenAPI document from any service, and passes on neither readiness nor
// metrics, which mean something only for one process.
func checkOperation(t *testing.T, g gateway, path string, loc ngxDirective, svc string, proxied bool, byName map[string]ticketdService) {
	t.Helper()
	switch path {
	case "/healthz":
		if args, ok := directive(loc, "return"); proxied || !ok || args[0] != "200" {
			t.Errorf("/healthz: want the gateway's own 200, got nginx.conf:%d", loc.line)
		}
	case "/openapi.yaml":
		if _, ok := byName[svc]; !proxied || !ok {
			t.Errorf("/openapi.yaml: want it from a ticketd service, got nginx.conf:%d", loc.line)
		}
	default:
		if proxied {
			t.Errorf("%s of one arbitrary service is passed through nginx.conf:%d; it means nothing for the system", path, loc.line)
		}
	}
}

// The gateway's own settings agree with the compose file and with what
// the services cannot do behind it.
func TestComposeGateway(t *testing.T) {
	f := loadCompose(t, nil)
	services := ticketdServices(t, f, loadDockerfile(t))
	g := loadGateway(t, f)

	listen, ok := directive(g.server, "listen")
	if !ok {
		t.Fatal("nginx.conf: the server has no listen")
	}
	published := false
	for _, p := range f.Services[g.name].Ports {
		if strings.HasSuffix(p, ":"+listen[0]) {
			published = true
		}
	}
	if !published {
		t.Errorf("nginx listens on %s, which %s does not publish (ports %v)", listen[0], g.name, f.Services[g.name].Ports)
	}

	// Each upstream is one ticketd service, found again after it
	// restarts with a new address: "resolve" (nginx 1.27.3 or later, with
	// a zone), and a resolver to ask.
	if _, ok := directive(g.http, "resolver"); !ok {
		t.Error("nginx.conf: no resolver, so upstream names are resolved once, at start")
	}
	for name, up := range g.upstreams {
		srv := up.find("server")
		if len(srv) != 1 || !slices.Contains(srv[0].args, "resolve") {
			t.Errorf("nginx.conf:%d: upstream %s: want one server with resolve", up.line, name)
		}
		if _, ok := directive(up, "zone"); !ok {
			t.Errorf("nginx.conf:%d: upstream %s: resolve needs a zone", up.line, name)
		}
	}
	tag := strings.TrimPrefix(f.Services[g.name].Image, "nginx:")
	var major, minor int
	if _, err := fmt.Sscanf(tag, "%d.%d", &major, &minor); err != nil || major < 1 || (major == 1 && minor < 28) {
		// 1.27.3 brought resolve; 1.27 is a mainline line whose early
		// releases lack it, so the stable 1.28 is the oldest tag that
		// surely has it.
		t.Errorf("the gateway image %s: want nginx 1.28 or later, for resolve in upstreams", f.Services[g.name].Image)
	}

	// nginx limits logins per client address at the edge too, before a
	// request reaches a service.
	login, ok := matchLocation(t, g.server, "/login")
	if !ok {
		t.Fatal("nginx.conf: no location for /login")
	}
	args, ok := directive(login, "limit_req")
	if !ok {
		t.Fatalf("nginx.conf:%d: /login has no limit_req: the per-address login limit is lost behind the gateway", login.line)
	}
	zone := strings.TrimPrefix(args[0], "zone=")
	keyed := false
	for _, z := range g.http.find("limit_req_zone") {
		if len(z.args) >= 2 && z.args[0] == "$binary_remote_addr" && strings.HasPrefix(z.args[1], "zone="+zone+":") {
			keyed = true
		}
	}
	if !keyed {
		t.Errorf("nginx.conf: the zone %s of /login is not keyed by the client address", zone)
	}
	if status, _ := directive(g.http, "limit_req_status"); !slices.Equal(status, []string{"429"}) {
		t.Errorf("nginx.conf: limit_req_status %v, want 429 as API.md says", status)
	}

	// The services see the client behind nginx: nginx appends the address
	// it got the request from to X-Forwarded-For, from a fixed address in
	// the stack's network, which every ticketd trusts (and nothing else).
	if fwd := g.http.find("proxy_set_header"); !slices.ContainsFunc(fwd, func(d ngxDirective) bool {
		return slices.Equal(d.args, []string{"X-Forwarded-For", "$proxy_add_x_forwarded_for"})
	}) {
		t.Error("nginx.conf: no proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for: the services cannot see the client's address")
	}
	net, ok := f.Services[g.name].Networks["default"]
	if !ok || net.IPv4Address == "" {
		t.Fatalf("%s has no fixed address on the default network, so the services cannot trust it alone", g.name)
	}
	gatewayAddr, err := netip.ParseAddr(net.IPv4Address)
	if err != nil {
		t.Fatalf("%s's address %q: %v", g.name, net.IPv4Address, err)
	}
	inSubnet := false
	for _, c := range f.Networks["default"].IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Contains(gatewayAddr) {
			inSubnet = true
		}
	}
	if !inSubnet {
		t.Errorf("the gateway's address %s is not in the default network's subnet %+v", gatewayAddr, f.Networks["default"].IPAM.Config)
	}
	for _, s := range services {
		want := []netip.Prefix{netip.PrefixFrom(gatewayAddr, 32)}
		if !slices.Equal(s.cfg.TrustedProxies, want) {
			t.Errorf("%s trusts the proxies %v, want exactly the gateway %v", s.name, s.cfg.TrustedProxies, want)
		}
		if s.cfg.Runs("users") && s.cfg.LoginsPerIP > 100 {
			t.Errorf("%s allows %d logins a minute per address: with the client's address known, keep the default", s.name, s.cfg.LoginsPerIP)
		}
	}
}
