package auth

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateSecretCreatesOnceThenRereads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "jwt.key") // the data dir does not exist yet
	first, err := LoadOrCreateSecret(path, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 64 {
		t.Fatalf("secret of %d bytes, want 64 hex digits of 32 random bytes", len(first))
	}
	if _, err := hex.DecodeString(string(first)); err != nil {
		t.Fatalf("secret %q is not hex: %v", first, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", mode)
	}
	second, err := LoadOrCreateSecret(path, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("second call returned another secret")
	}
	other, err := LoadOrCreateSecret(filepath.Join(filepath.Dir(path), "webhook.key"), 32)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, other) {
		t.Fatal("two secret files hold the same secret")
	}
	assertNoTempFiles(t, filepath.Dir(path))
}

func TestLoadOrCreateSecretExistingFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // "" means an error
	}{
		{"operator's own secret", "an operator chose this secret of 40 bytes", "an operator chose this secret of 40 bytes"},
		{"surrounding white space dropped", "  " + strings.Repeat("k", 32) + "\r\n", strings.Repeat("k", 32)},
		{"too short", "short secret", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "webhook.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadOrCreateSecret(path, 32)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("secret %q accepted", got)
				}
				after, _ := os.ReadFile(path)
				if string(after) != tt.content {
					t.Fatal("a refused secret file was overwritten")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("secret %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadOrCreateSecretConcurrentGoroutinesAgree(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwt.key")
	const n = 32
	secrets := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			secrets[i], errs[i] = LoadOrCreateSecret(path, 32)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(secrets[i], secrets[0]) {
			t.Fatalf("creator %d got another secret than creator 0", i)
		}
	}
	assertNoTempFiles(t, dir)
}

// Processes sharing a data dir at start-up must end with one secret.
func TestLoadOrCreateSecretConcurrentProcessesAgree(t *testing.T) {
	if path := os.Getenv("AUTH_TEST_SECRET_PATH"); path != "" {
		secret, err := LoadOrCreateSecret(path, 32)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("secret=%s\n", secret)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "webhook.key")
	const n = 6
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(exe, "-test.run=^TestLoadOrCreateSecretConcurrentProcessesAgree$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), "AUTH_TEST_SECRET_PATH="+path)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
		secret := ""
		for line := range strings.Lines(outs[i].String()) {
			if s, ok := strings.CutPrefix(line, "secret="); ok {
				secret = strings.TrimSpace(s)
			}
		}
		if secret == "" {
			t.Fatalf("process %d printed no secret:\n%s", i, outs[i].String())
		}
		if i == 0 {
			first = secret
		} else if secret != first {
			t.Fatalf("process %d got another secret than process 0", i)
		}
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(onDisk)) != first {
		t.Fatal("the processes agree on a secret that is not the file's")
	}
	assertNoTempFiles(t, dir)
}

func TestLoadOrCreateSecretRefusesBadSize(t *testing.T) {
	if _, err := LoadOrCreateSecret(filepath.Join(t.TempDir(), "x.key"), 0); err == nil {
		t.Fatal("a secret of 0 bytes was created")
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
