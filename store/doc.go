// Package store keeps failover requests and their audit log in a single bbolt file.
//
// The store is where the bot's safety promises are kept: a failover is never started
// twice, never forgotten once started, and every step can be shown to an auditor.
// It knows nothing of Slack or of Enterprise Manager; it stores strings the bot gives it.
//
// # One guarded transaction per change
//
// Every write method opens exactly one bbolt read-write transaction, loads the request,
// checks that the change is legal for the state it is really in (and, for [Store.Transition],
// that the caller saw the current version), writes the new request, updates the indexes
// and appends the audit event, then commits. Either all of that is on disk or none of it
// is. A change that is illegal or stale returns a [*ConflictError] naming the state the
// request is really in and who put it there, so a late click can be answered with
// "FO-3 is already approved (by U123 at 14:02 UTC)".
//
// # State machine
//
//	pending    -> approved (Approve, enough approvers) | rejected (Reject)
//	           |  withdrawn (Withdraw, requester only) | expired (Expire, after ExpiresAt)
//	approved   -> submitting | failed | unknown
//	submitting -> running | failed | unknown | approved (the POST provably never reached EM)
//	running    -> running (EM progress) | stopping | succeeded | warning | failed | unknown
//	stopping   -> stopping (EM progress) | stopped | succeeded | warning | failed | unknown
//
// Edges out of pending are only reachable through the dedicated methods, which enforce the
// two-person rule, the requester-only withdrawal and the expiry time; [Store.Transition]
// refuses them. Every other state is terminal.
//
// # Crash semantics
//
// The bot records the intent before the side effect: it moves a request to submitting
// before it sends the failover POST to Enterprise Manager, and records the task ID
// (submitting -> running) after the POST answers. If the process dies between the two,
// the request is found in submitting on the next start. It must never be sent again:
// [Store.Active] returns it, and the bot reconciles it (looks for the restore session EM
// created) or moves it to unknown and says so in Slack. A commit that bbolt acknowledged
// survives a crash (bbolt fsyncs before Update returns); one that was not acknowledged
// never appears half-written.
//
// # Audit log
//
// Each change appends an [Event] in the same transaction, keyed by a sequence number.
// Events are hash-chained: Hash is the SHA-256 of a canonical binary encoding of the event
// including Prev, the previous event's Hash, and the stored value is exactly those bytes
// followed by the hash, so changing any stored byte is detected by [Store.Verify]. The last
// sequence and hash are also kept in the meta bucket so that truncating the log is detected.
// The chain makes tampering evident, not impossible: someone who can rewrite the file can
// rewrite the whole chain, so an auditor who needs more should copy event hashes elsewhere.
//
// # Time
//
// Every timestamp comes from Options.Now; the store never reads the wall clock itself, so
// tests control expiry exactly. Times are stored in UTC.
package store
