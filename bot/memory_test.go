//go:build !race

package bot_test

import "testing"

// TestMemoryWith100kRequests fails if the bot's resident memory grows by more than 64 MiB when
// it opens a store holding 100,000 finished requests, polls and lists. It is not built with
// -race: the race detector's shadow memory would be measured instead of the bot's.
//
// What is counted: VmRSS growth from just before the file is opened to after the cycles,
// which overcounts the store's share (the harness's own servers are included). bbolt mmaps the
// whole file (about 145 MiB here) read-only; only the pages the bot touches become resident,
// and those are clean page-cache pages the kernel can reclaim — they appear as RssFile and are
// counted anyway. The address space (VmSize) grows by the mapping and is not a cost.
func TestMemoryWith100kRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-request store file (a few seconds)")
	}
	before, after, ms, fileMB := memoryAt100k(t, 2)
	growth := after["VmRSS"] - before["VmRSS"]
	t.Logf("file %.0f MiB; heap in use %.1f MiB, Go sys %.1f MiB; RSS %.1f → %.1f MiB (growth %.1f: anon %+.1f, file-backed %+.1f)",
		fileMB, float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20), before["VmRSS"], after["VmRSS"], growth,
		after["RssAnon"]-before["RssAnon"], after["RssFile"]-before["RssFile"])
	if before["VmRSS"] == 0 {
		t.Skip("no /proc/self/status on this system")
	}
	if growth > 64 {
		t.Errorf("RSS grew by %.1f MiB with 100,000 stored requests; the budget is 64 MiB", growth)
	}
}
