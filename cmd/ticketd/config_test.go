package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigTrustedProxies(t *testing.T) {
	c, err := loadConfig(nil, envOf(map[string]string{"TICKETD_TRUSTED_PROXIES": "172.28.0.0/16, 10.0.0.5"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("172.28.0.0/16"), netip.MustParsePrefix("10.0.0.5/32")}
	if !slices.Equal(c.TrustedProxies, want) {
		t.Fatalf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
	}
	// The flag wins over the variable.
	c, err = loadConfig([]string{"-trusted-proxies", "::1"}, envOf(map[string]string{"TICKETD_TRUSTED_PROXIES": "10.0.0.5"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 1 || c.TrustedProxies[0] != netip.MustParsePrefix("::1/128") {
		t.Fatalf("TrustedProxies = %v, want the flag's ::1", c.TrustedProxies)
	}
	// None by default: the connection's peer is the client.
	if c, err = loadConfig(nil, envOf(nil)); err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default TrustedProxies = %v, %v; want none", c.TrustedProxies, err)
	}
	if _, err := loadConfig(nil, envOf(map[string]string{"TICKETD_TRUSTED_PROXIES": "nginx"})); err == nil || !strings.Contains(err.Error(), "trusted-proxies") {
		t.Fatalf("a host name as trusted proxy: err = %v, want a trusted-proxies error", err)
	}
}
