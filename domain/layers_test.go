// Package domain_test enforces the architecture's dependency rule: it
// points inward. The domain knows nothing of storage, transport or HTTP;
// the application layers (commands, projections, readmodels) know the
// domain and their own ports, never an adapter.
package domain_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ticketd/ticketing"

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func isStd(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") }

func TestDependenciesPointInward(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages", len(pkgs))
	}
	layer := func(path string) string {
		rel := strings.TrimPrefix(path, module+"/")
		return strings.Split(rel, "/")[0]
	}
	checked := 0
	for _, p := range pkgs {
		switch layer(p.ImportPath) {
		case "domain":
			checked++
			for _, imp := range p.Imports {
				if isStd(imp) || imp == "github.com/google/uuid" || strings.HasPrefix(imp, module+"/domain") {
					continue
				}
				t.Errorf("%s imports %s: the domain may import only the standard library, uuid and itself", p.ImportPath, imp)
			}
		case "commands", "projections", "readmodels":
			checked++
			for _, imp := range p.Imports {
				if isStd(imp) || imp == "github.com/google/uuid" {
					continue
				}
				if !strings.HasPrefix(imp, module+"/") {
					t.Errorf("%s imports %s: application layers use no third-party adapters", p.ImportPath, imp)
					continue
				}
				switch layer(imp) {
				case "domain", "commands", "projections", "readmodels":
				default:
					t.Errorf("%s imports %s: application layers may not depend on %s", p.ImportPath, imp, layer(imp))
				}
			}
		}
	}
	if checked < 8 {
		t.Fatalf("checked only %d packages of the inner layers", checked)
	}
}
