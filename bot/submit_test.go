package bot_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failover-bot/failover-bot/bot"
	"github.com/failover-bot/failover-bot/emapi/emsim"
	"github.com/failover-bot/failover-bot/store"
)

// emDown closes EM's listener, so connections are refused (nothing can be sent), and returns
// a function that serves EM again on the same address.
func (h *harness) emDown() (up func()) {
	h.t.Helper()
	addr := h.emSrv.Listener.Addr().String()
	h.emSrv.Close()
	return func() {
		h.t.Helper()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			h.t.Fatalf("EM back on %s: %v", addr, err)
		}
		srv := &http.Server{Handler: h.em, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		h.t.Cleanup(func() { srv.Close() })
	}
}

// TestSubmissionNotSentIsRetried: EM refuses connections when the approval arrives. Nothing was
// sent, so the request goes back to approved, the thread says so once, and the poller sends it
// (once) when EM is back.
func TestSubmissionNotSentIsRetried(t *testing.T) {
	h := newHarness(t)
	id := h.requestDB01()
	up := h.emDown()
	h.approve(Approver1, id)
	h.idle()
	r := h.wantState(id, store.Approved)
	mustContain(t, "thread", h.threadText(id), "Enterprise Manager is unreachable", "Nothing was sent", "keep retrying under the same approval")
	mustContain(t, "card", h.cardJSON(id), "EM unreachable, nothing was sent, retrying")
	if r.Items[0].EMMessage == "" {
		t.Error("the card has no word of the retry")
	}
	h.poll() // still down: no second thread line
	h.wantState(id, store.Approved)
	up()
	h.poll()
	h.wantState(id, store.Running)
	if n := h.failoverPOSTs(); n != 1 {
		t.Fatalf("failover POSTs = %d, want 1", n)
	}
	mustContain(t, "thread", h.threadText(id), "accepted the failover")
	if got := strings.Count(h.threadText(id), "is unreachable"); got != 1 {
		t.Errorf("the thread heard about the outage %d times, want once", got)
	}
}

// TestSubmissionNotSentGivesUp: after SubmitRetryFor with EM unreachable, the request fails and
// says plainly that nothing was sent.
func TestSubmissionNotSentGivesUp(t *testing.T) {
	h := newHarness(t, withOptions(func(o *bot.Options) { o.SubmitRetryFor = 10 * time.Minute }))
	id := h.requestDB01()
	h.emDown()
	h.approve(Approver1, id)
	h.idle()
	h.wantState(id, store.Approved)
	h.clock.Advance(11 * time.Minute)
	h.poll()
	h.wantState(id, store.Failed)
	mustContain(t, "thread", h.threadText(id), "stayed unreachable", "Nothing was sent")
	if n := h.failoverPOSTs(); n != 0 {
		t.Fatalf("failover POSTs = %d, want 0", n)
	}
}

// TestServerErrorAfterStartIsReconciled: EM starts the failover and then answers 502 (a proxy)
// or 500: that proves nothing, so the request is reconciled through the restore session, never
// reported as "not started", and the POST is not repeated.
func TestServerErrorAfterStartIsReconciled(t *testing.T) {
	for _, status := range []int{500, 502, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			h := newHarness(t)
			h.em.SetScript(finDB01, emsim.Script{Running: 5 * time.Minute})
			id := h.requestDB01()
			h.em.FailAfterServe(1, status)
			h.approve(Approver1, id)
			h.idle()
			h.wantState(id, store.Submitting)
			thread := h.threadText(id)
			mustContain(t, "thread", thread, "checking whether EM started it", "I will not send it again")
			mustNotContain(t, "thread", thread, "was not started")
			h.clock.Advance(time.Minute)
			h.poll()
			h.wantState(id, store.Running)
			if n := h.failoverPOSTs(); n != 1 {
				t.Fatalf("failover POSTs = %d, want 1", n)
			}
		})
	}
}
