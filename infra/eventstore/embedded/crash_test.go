package embedded_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
)

const crashWriters = 4

// crashNamespace derives the ids of the crash test's records, so that the
// parent knows every record's id and data from its stream and revision.
var crashNamespace = uuid.MustParse("6f2a3c1e-9b7d-4e8a-a1f0-5c3b2d1e0f9a")

func crashRecord(stream string, rev uint64) es.Record {
	key := fmt.Sprintf("%s@%d", stream, rev)
	return es.Record{
		ID:            uuid.NewSHA1(crashNamespace, []byte(key)),
		Type:          "CrashTested",
		SchemaVersion: 1,
		Time:          time.Unix(1700000000, int64(rev)),
		Data:          []byte(key + strings.Repeat(".", 64)),
	}
}

// runCrashWriter is the child of TestCrashRecovery: several goroutines
// append to their own streams, continuing wherever the streams are, and
// print one line per acknowledged append until the parent kills the
// process:
//
//	ack <stream> <first revision> <last revision> <position of last> <ids...>
func runCrashWriter(dir string) {
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	var out sync.Mutex
	for g := range crashWriters {
		go func() {
			stream := fmt.Sprintf("crash-%d", g)
			var next uint64
			last, err := s.ReadStream(ctx, stream, es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 1})
			switch {
			case err == nil:
				next = last[0].Revision + 1
			case !errors.Is(err, es.ErrStreamNotFound):
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			for i := 0; ; i++ {
				recs := make([]es.Record, i%3+1)
				for j := range recs {
					recs[j] = crashRecord(stream, next+uint64(j))
				}
				res, err := s.Append(ctx, stream, es.ExpectVersion(int64(next)-1), recs)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				var line strings.Builder
				fmt.Fprintf(&line, "ack %s %d %d %d", stream, next, res.NextRevision, res.Position)
				for _, r := range recs {
					line.WriteString(" " + r.ID.String())
				}
				line.WriteString("\n")
				// One write per line, so a line is never torn by the kill.
				out.Lock()
				_, err = os.Stdout.WriteString(line.String())
				out.Unlock()
				if err != nil {
					os.Exit(5)
				}
				next = res.NextRevision + 1
			}
		}()
	}
	select {}
}

type crashAck struct {
	stream      string
	first, last uint64
	pos         uint64
	ids         []uuid.UUID
}

func parseAck(line string) (crashAck, error) {
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "ack" {
		return crashAck{}, fmt.Errorf("malformed line %q", line)
	}
	var a crashAck
	var err1, err2, err3 error
	a.stream = f[1]
	a.first, err1 = strconv.ParseUint(f[2], 10, 64)
	a.last, err2 = strconv.ParseUint(f[3], 10, 64)
	a.pos, err3 = strconv.ParseUint(f[4], 10, 64)
	for _, s := range f[5:] {
		id, err := uuid.Parse(s)
		if err != nil {
			return crashAck{}, err
		}
		a.ids = append(a.ids, id)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return crashAck{}, err
	}
	if a.last-a.first+1 != uint64(len(a.ids)) {
		return crashAck{}, fmt.Errorf("line %q: revisions and ids disagree", line)
	}
	return a, nil
}

// TestCrashRecovery kills a writing process with SIGKILL three times over
// the same directory. After each kill, every append the child saw
// acknowledged must be stored with its revisions, ids, data and position,
// the log must be gapless from 1 to the head, and appending must carry on
// at the right revisions.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		acks := crashChild(t, dir, 200+100*round)
		if len(acks) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		verifyAfterCrash(t, dir, acks)
	}
}

// crashChild runs the writer child, kills it after killAfter
// acknowledgements, and returns every acknowledgement it printed.
func crashChild(t *testing.T, dir string, killAfter int) []crashAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-embedded.crash-writer="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []crashAck
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		a, err := parseAck(sc.Text())
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v (stderr: %s)", err, stderr.String())
		}
		acks = append(acks, a)
		if !killed && len(acks) >= killAfter {
			// SIGKILL: no deferred code, no Close, no flush. Lines
			// already in the pipe are still read: they are acks too.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks: %v (stderr: %s)", len(acks), err, stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("child was killed but Wait = %v (stderr: %s)", err, stderr.String())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
	return acks
}

func verifyAfterCrash(t *testing.T, dir string, acks []crashAck) {
	t.Helper()
	s := openStore(t, dir, embedded.Options{})
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := t.Context()

	// Every acknowledged append is there, as acknowledged.
	for _, a := range acks {
		got, err := s.ReadStream(ctx, a.stream, es.ReadOptions{From: a.first, Limit: len(a.ids)})
		if err != nil || len(got) != len(a.ids) {
			t.Fatalf("acknowledged %s@%d..%d: %d records, %v", a.stream, a.first, a.last, len(got), err)
		}
		for i, r := range got {
			want := crashRecord(a.stream, a.first+uint64(i))
			if r.ID != a.ids[i] || r.ID != want.ID || !bytes.Equal(r.Data, want.Data) || r.Revision != a.first+uint64(i) {
				t.Fatalf("acknowledged %s@%d holds %s %q", a.stream, a.first+uint64(i), r.ID, r.Data)
			}
		}
		if got[len(got)-1].Position != a.pos {
			t.Fatalf("acknowledged %s@%d at position %d, stored at %d", a.stream, a.last, a.pos, got[len(got)-1].Position)
		}
	}

	// The log is gapless from 1 to the head, and every stream in it is
	// contiguous from revision 0 (acknowledged or not, a record that
	// survived is whole).
	head, err := s.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	heads := make(map[string]uint64)
	var pos uint64
	for pos < head {
		page, err := s.ReadAll(ctx, pos, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			t.Fatalf("ReadAll stopped at %d below head %d", pos, head)
		}
		for _, r := range page {
			if r.Position != pos+1 {
				t.Fatalf("log jumps from %d to %d", pos, r.Position)
			}
			pos = r.Position
			if want := crashRecord(r.Stream, r.Revision); r.ID != want.ID || !bytes.Equal(r.Data, want.Data) {
				t.Fatalf("position %d holds %s@%d with the wrong content", r.Position, r.Stream, r.Revision)
			}
			if r.Revision != heads[r.Stream] {
				t.Fatalf("%s revision %d follows %d records", r.Stream, r.Revision, heads[r.Stream])
			}
			heads[r.Stream]++
		}
	}
	if more, err := s.ReadAll(ctx, head, 10); err != nil || len(more) != 0 {
		t.Fatalf("records beyond the head %d: %d, %v", head, len(more), err)
	}

	// Appending carries on at each stream's next revision and the next
	// position; a stale expectation conflicts.
	for g := range crashWriters {
		stream := fmt.Sprintf("crash-%d", g)
		n := heads[stream]
		if n == 0 {
			continue
		}
		res, err := s.Append(ctx, stream, es.Exact(n-1), []es.Record{crashRecord(stream, n)})
		if err != nil || res.NextRevision != n || res.Position != head+1 {
			t.Fatalf("append to %s after the crash = %+v, %v; want revision %d at position %d", stream, res, err, n, head+1)
		}
		head++
		if _, err := s.Append(ctx, stream, es.Exact(n-1), []es.Record{crashRecord(stream, n+1)}); !errors.Is(err, es.ErrConflict) {
			t.Fatalf("stale append to %s after the crash = %v, want a conflict", stream, err)
		}
	}
}

// runHolder is the child of TestDataDirInUse: it holds the store open
// until its stdin closes.
func runHolder(dir string) {
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()

	t.Run("by another process", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-embedded.hold="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("holder did not start: %q, %v (stderr: %s)", line, err, stderr.String())
		}

		s, err := embedded.Open(dir, embedded.Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded on a directory another process has open")
		}
		if !errors.Is(err, embedded.ErrDirInUse) || !strings.Contains(err.Error(), "in use by another ticketd process") {
			t.Errorf("Open = %v, want ErrDirInUse saying another ticketd process has it", err)
		}

		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("holder: %v (stderr: %s)", err, stderr.String())
		}
		s = openStore(t, dir, embedded.Options{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("in this process", func(t *testing.T) {
		s := openStore(t, dir, embedded.Options{})
		defer s.Close()
		_, err := embedded.Open(dir+"/.", embedded.Options{})
		if !errors.Is(err, embedded.ErrDirInUse) {
			t.Errorf("second Open in one process = %v, want ErrDirInUse", err)
		}
	})
}
