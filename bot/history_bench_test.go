package bot_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/store"
)

// BenchmarkListRecent measures `/failover list --recent` end to end (a signed slash command over
// HTTP, the store's finished index, the answer) beside plain `/failover list`, with 0, 10,000 and
// 100,000 older finished requests in the file, 60 finished in the last day and 10 pending: the
// figures should match across the three. All three harnesses are built before any timing, so the
// sub-benchmarks run back to back under the same machine load. Run without -race:
//
//	go test -run '^$' -bench 'ListRecent' ./bot/
func BenchmarkListRecent(b *testing.B) {
	sizes := []int{0, 10_000, 100_000}
	harnesses := make([]*harness, len(sizes))
	for i, old := range sizes {
		path := b.TempDir() + "/history.db"
		if old > 0 {
			buildHistory(b, path, old) // finished on 2025-01-01, long before the harness's clock
		}
		h := newHarness(b, func(c *harnessConfig) { c.dbPath = path })
		seedRecent(b, h, old, 60, 10)
		harnesses[i] = h
	}
	for i, old := range sizes {
		h := harnesses[i]
		for _, q := range []struct{ name, text, want string }{
			{"list--recent", "list --recent", "*60 requests finished in the last 24 hours*"},
			{"list", "list", "60 requests finished in the last 24 hours: `/failover list --recent` lists them."},
		} {
			b.Run(fmt.Sprintf("finished=%d/%s", old, q.name), func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					if got := h.command(Approver1, q.text); !strings.Contains(got, q.want) {
						b.Fatalf("/failover %s answered:\n%s", q.text, got)
					}
				}
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// seedRecent records, through the store, finished requests (rejected a minute apart, ending now)
// and pending ones, each with a target of its own, and waits for their cards.
func seedRecent(tb testing.TB, h *harness, base, finished, pending int) {
	tb.Helper()
	ctx := context.Background()
	for i := range finished + pending {
		if i < finished {
			h.clock.Advance(time.Minute)
		}
		r, err := h.st.Create(ctx, store.NewRequest{Kind: store.KindVM, Intent: store.IntentLatest, Reason: "drill", Requester: Requester,
			Channel: Channel, TTL: 24 * time.Hour, Target: store.Target{ReplicaID: "rep-1", ReplicaName: "CDP-Big",
				ID: fmt.Sprintf("recent-%d-%d", base, i), Name: fmt.Sprintf("vm-%04d", i)}})
		if err == nil && i < finished {
			_, err = h.st.Reject(ctx, r.ID, Approver1, "drill over")
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	h.idle()
}

// processCPU is the process's user+system CPU time in nanoseconds: the machine is shared, so CPU
// per operation is steadier than wall time.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
