package core

import (
	"fmt"

	"github.com/failover-bot/failover-bot/store"
)

// NextStepConsole is what follows a failover that worked: Enterprise Manager's REST API has no
// call to commit or undo a CDP failover, so the bot cannot, and says where it is done.
const NextStepConsole = "Next: check the VMs, then in the Veeam Backup & Replication console (Home › Replicas › Active) choose *Permanent Failover* to keep them or *Undo Failover* to go back; Enterprise Manager's REST API cannot do either, so I cannot."

// nextStepFailed is what follows a failover that did not work.
const nextStepFailed = "Next: read the restore session in the Veeam console (a half-done failover stays as it is, and may need *Undo Failover*); to try again, make a new request."

// pointText names the restore point an item used: the intent, and the point the pre-flight
// found when it did.
func pointText(r *store.Request, it *store.Item) string {
	s := restoreText(r.Intent, r.RestoreTime)
	if it != nil && !it.Point.IsZero() {
		s += " (" + it.Point.UTC().Format(pointFormat) + ")"
	}
	return s
}

// legName names one item's target for an outcome line: the VM with its replica, or the vApp.
func legName(l leg) string {
	t := l.Target
	if l.Request.KindOf(l.Item) == store.KindVApp {
		return fmt.Sprintf("vApp *%s*", esc(t.Name))
	}
	if t.ReplicaName != "" {
		return fmt.Sprintf("VM *%s* of *%s*", esc(t.Name), esc(t.ReplicaName))
	}
	return fmt.Sprintf("VM *%s*", esc(t.Name))
}

// outcomeLine is the thread's line for a one-item request's outcome: what failed over, to which
// restore point, what EM said, and what to do next.
func outcomeLine(l leg) string {
	what := fmt.Sprintf("%s to the %s", legName(l), pointText(l.Request, l.Item))
	em := emText(l)
	switch l.Item.State {
	case store.Succeeded:
		return fmt.Sprintf(":large_green_circle: *Failover succeeded*: %s — %s.\n%s", what, em, NextStepConsole)
	case store.Warning:
		return fmt.Sprintf(":large_yellow_circle: *Failover finished with warnings*: %s — %s. Read the warnings in the restore session first.\n%s", what, em, NextStepConsole)
	case store.Failed:
		return fmt.Sprintf(":red_circle: *Failover failed*: %s — %s.\n%s", what, em, nextStepFailed)
	case store.Stopped:
		return fmt.Sprintf(":black_square_for_stop: *Failover stopped*: %s — %s.\n%s", what, em, nextStepFailed)
	}
	return itemStatusLine(l) + "."
}

// outcomeNext is the next step after a request's outcome, for its summary and its requester.
func outcomeNext(s store.State) string {
	switch s {
	case store.Succeeded, store.Warning:
		return NextStepConsole
	case store.Unknown:
		return "Next: check the restore sessions in Enterprise Manager; I will not send anything again."
	}
	return nextStepFailed
}
