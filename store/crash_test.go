package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// crashChildEnv switches the test binary into the crash child: it writes to the named
// database file until it is killed.
const crashChildEnv = "FAILOVER_BOT_STORE_CRASH_CHILD"

// TestCrashSafety re-executes the test binary as a child that creates and advances
// requests from several goroutines and prints every write bbolt acknowledged. The parent
// kills it with SIGKILL mid-stream, reopens the file and checks that every acknowledged
// write survived, every request is in a legal, consistently indexed state, and the audit
// chain verifies. Three rounds run against the same file.
func TestCrashSafety(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[string]uint64{} // request ID -> highest acknowledged version
	for round := range 3 {
		killAfter := 100 + rand.IntN(200)
		n := runCrashChild(t, path, killAfter, acked)
		s := mustOpenStoreAt(t, path, Options{})
		checkConsistent(t, s, acked)
		reqs := countRequests(t, s)
		t.Logf("round %d: killed after %d acks (%d read in total); file holds %d requests", round, killAfter, n, reqs)
		s.Close()
	}
}

func runCrashChild(t *testing.T, path string, killAfter int, acked map[string]uint64) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		id, v, ok := parseAck(line)
		if !ok {
			continue // the testing package's own output
		}
		n++
		acked[id] = max(acked[id], v)
		if n == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child stopped by itself after %d acks: %v\n%s", n, err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL\n%s", err, stderr.String())
	}
	return n
}

func parseAck(line string) (string, uint64, bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return "", 0, false
	}
	v, err := strconv.ParseUint(f[2], 10, 64)
	return f[1], v, err == nil
}

// crashChild never returns normally: it writes until killed (or gives up after a minute
// so an orphan cannot run forever if the parent dies).
func crashChild(path string) {
	s, err := Open(path, Options{LockTimeout: 10 * time.Second, ApprovalsRequired: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	ack := func(r *Request, err error) *Request {
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(3)
		}
		mu.Lock()
		fmt.Fprintf(os.Stdout, "ack %s %d\n", r.ID, r.Version)
		mu.Unlock()
		return r
	}
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				nr := validNewRequest()
				nr.Reason = fmt.Sprintf("worker %d request %d", w, i)
				nr.Target.ID = fmt.Sprintf("vm-%d-%d-%d", os.Getpid(), w, i) // rounds share the file
				nr.TTL = time.Nanosecond
				r := ack(s.Create(context.Background(), nr))
				r = ack(s.SetMessage(context.Background(), r.ID, "C1", fmt.Sprintf("%d.%d.%d", os.Getpid(), w, i), 0))
				switch i % 5 {
				case 3:
					ack(s.Reject(context.Background(), r.ID, "U300", "no"))
					continue
				case 4:
					ack(s.Expire(context.Background(), r.ID))
					continue
				}
				r = ack(s.Approve(context.Background(), r.ID, "U200", r.Digest))
				r = ack(s.Approve(context.Background(), r.ID, "U201", r.Digest))
				step := func(to State, apply func(*Item)) {
					r = ack(s.Transition(context.Background(), Change{ID: r.ID, Version: r.Items[0].Version, To: to, Actor: "bot", Apply: apply}))
				}
				step(Submitting, nil)
				task := "task-" + r.ID
				step(Running, func(it *Item) { it.TaskID = task })
				step(Running, func(it *Item) { it.EMProgress = 50 })
				switch i % 5 {
				case 0:
					step(Succeeded, nil)
				case 1:
					step(Stopping, nil)
					step(Stopped, nil)
				case 2:
					// left running: the next start must find it active
				}
			}
		})
	}
	wg.Wait()
	os.Exit(4)
}

// checkConsistent checks the invariants a crash must never break.
func checkConsistent(t *testing.T, s *testStore, acked map[string]uint64) {
	t.Helper()
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("Verify after crash: %v", err)
	}
	// Replay the audit log: per request, each event must start where the last one ended
	// and be a legal move; the count of events equals the version (one event per write).
	last := map[string]State{}
	count := map[string]uint64{}
	err := s.Events(context.Background(), 0, time.Time{}, func(ev Event) error {
		from, seen := last[ev.RequestID]
		switch {
		case !seen && (ev.From != "" || ev.To != Pending):
			return fmt.Errorf("event %d: %s starts %s->%s", ev.Seq, ev.RequestID, ev.From, ev.To)
		case seen && ev.From != from:
			return fmt.Errorf("event %d: %s moves from %s but was %s", ev.Seq, ev.RequestID, ev.From, from)
		case seen && ev.From != ev.To && !legal(ev.From, ev.To):
			return fmt.Errorf("event %d: %s illegal %s->%s", ev.Seq, ev.RequestID, ev.From, ev.To)
		}
		last[ev.RequestID] = ev.To
		count[ev.RequestID]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		active, msgs := tx.Bucket(bucketActive), tx.Bucket(bucketMessages)
		c := tx.Bucket(bucketRequests).Cursor()
		seen := map[string]bool{}
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, err := decodeRequest(v)
			if err != nil {
				return err
			}
			seen[r.ID] = true
			if (active.Get(k) != nil) != r.State.Active() {
				return fmt.Errorf("%s is %s but active index says %v", r.ID, r.State, active.Get(k) != nil)
			}
			if last[r.ID] != r.State || count[r.ID] != r.Version {
				return fmt.Errorf("%s is %s v%d but its events end at %s after %d", r.ID, r.State, r.Version, last[r.ID], count[r.ID])
			}
			decided := r.State.Active() && r.State != Pending || r.State.Terminal() && r.State != Rejected && r.State != Expired && r.State != Withdrawn
			if decided && len(r.Approvals) < r.ApprovalsRequired {
				return fmt.Errorf("%s is %s with %d of %d approvals", r.ID, r.State, len(r.Approvals), r.ApprovalsRequired)
			}
			if r.MessageTS != "" {
				if v := msgs.Get(messageKey(r.Channel, r.MessageTS)); len(v) != 8 || binary.BigEndian.Uint64(v) != r.Seq {
					return fmt.Errorf("%s's message is not indexed", r.ID)
				}
			}
		}
		if err := active.ForEach(func(k, _ []byte) error {
			if tx.Bucket(bucketRequests).Get(k) == nil {
				return fmt.Errorf("active index holds missing request %x", k)
			}
			return nil
		}); err != nil {
			return err
		}
		for id, v := range acked {
			if !seen[id] {
				return fmt.Errorf("acknowledged %s v%d is missing", id, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range acked {
		r, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Version < v {
			t.Errorf("%s: version %d on disk, but version %d was acknowledged", id, r.Version, v)
		}
	}
	checkFinishedIndex(t, s.Bolt)
	if _, err := s.Active(context.Background()); err != nil {
		t.Errorf("Active after crash: %v", err)
	}
}

func countRequests(t *testing.T, s *testStore) int {
	t.Helper()
	n := 0
	s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketRequests).Stats().KeyN; return nil })
	return n
}
