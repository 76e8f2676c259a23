package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/failover-bot/failover-bot/store/failover"
)

// seedPending creates n pending requests in one transaction, outside any timer.
func seedPending(tb testing.TB, s *Bolt, n int) []*Request {
	tb.Helper()
	out := make([]*Request, 0, n)
	err := s.db.Update(func(tx *bolt.Tx) error {
		for range n {
			nr := validNewRequest()
			now := s.now().UTC()
			r := &Request{Kind: nr.Kind, Items: []Item{{Target: nr.Target, State: Pending, StateAt: now, Version: 1}},
				Intent: nr.Intent, DigestV: failover.DigestVersion, Reason: nr.Reason,
				Requester: nr.Requester, Channel: nr.Channel, ApprovalsRequired: 1, State: Pending,
				StateBy: nr.Requester, StateAt: now, CreatedAt: now, ExpiresAt: now.Add(nr.TTL)}
			r.Digest = r.ComputeDigest()
			if err := s.createRequest(boltTx{tx}, r, now); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkTransition measures a whole approved lifecycle: approve, submitting, running,
// one progress update, succeeded — five guarded, fsynced transactions per op.
func BenchmarkTransition(b *testing.B) {
	s := mustOpenStore(b, Options{})
	reqs := seedPending(b, s.Bolt, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := reqs[i]
		r, err := s.Approve(context.Background(), r.ID, "U200", r.Digest)
		if err != nil {
			b.Fatal(err)
		}
		for _, to := range []State{Submitting, Running, Running, Succeeded} {
			if r, err = s.Transition(context.Background(), Change{ID: r.ID, Version: r.Items[0].Version, To: to, Actor: "bot"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(5*b.N)/b.Elapsed().Seconds(), "transitions/s")
}

// BenchmarkCreateParallel shows concurrent Creates coalescing into shared commits
// (groupCommit): with more goroutines, throughput rises while each commit still fsyncs once.
func BenchmarkCreateParallel(b *testing.B) {
	for _, p := range []int{1, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := mustOpenStore(b, Options{})
			b.SetParallelism(p)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Create(context.Background(), validNewRequest()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkActive lists the same ten active requests with 0, 10,000 and 100,000 finished
// requests (and six audit events each) in the file; the figures should match. All three
// files are built before any timing, so the sub-benchmarks run back to back under the
// same machine load; cpu-ns/op (process CPU time, from getrusage) is reported alongside
// wall time because the machine is shared. The 100,000 case also reports the file size
// and the process's memory after reopening.
func BenchmarkActive(b *testing.B) {
	sizes := []int{0, 10_000, 100_000}
	stores := make([]*testStore, len(sizes))
	for i, finished := range sizes {
		s := mustOpenStore(b, Options{})
		seedFinished(b, s.Bolt, finished)
		for _, st := range []State{Pending, Pending, Pending, Approved, Approved, Submitting, Running, Running, Running, Stopping} {
			reach(b, s, st)
		}
		// Measure a freshly opened file, as the bot sees it after a restart.
		s.Close()
		stores[i] = mustOpenStoreAt(b, s.path, Options{})
	}
	for i, finished := range sizes {
		s := stores[i]
		b.Run(fmt.Sprintf("finished=%d", finished), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				active, err := s.Active(context.Background())
				if err != nil || len(active) != 10 {
					b.Fatalf("Active: %d, %v", len(active), err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if finished == 100_000 {
				fi, err := os.Stat(s.path)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				debug.FreeOSMemory()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(fi.Size())/1e6, "file-MB")
				b.ReportMetric(float64(ms.HeapInuse)/1e6, "heap-MB")
				b.ReportMetric(rssMB(), "rss-MB")
			}
		})
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// rssMB reads the resident set size from /proc (Linux); 0 elsewhere.
func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1e3
		}
	}
	return 0
}

// TestSeedFinishedIsConsistent keeps the benchmark's fast history builder honest: what it
// writes must look exactly like history made through the public methods.
func TestSeedFinishedIsConsistent(t *testing.T) {
	s := mustOpenStore(t, Options{})
	seedFinished(t, s.Bolt, 20)
	reach(t, s, Running)
	checkConsistent(t, s, nil)
	if active, err := s.Active(context.Background()); err != nil || len(active) != 1 {
		t.Errorf("Active = %d, %v; want 1", len(active), err)
	}
}
