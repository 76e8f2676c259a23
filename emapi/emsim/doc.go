// Package emsim is a strict, in-memory simulator of the Veeam Backup Enterprise Manager REST API
// (the CDP failover subset failover-bot uses), for tests over httptest and for the console demo.
//
// It is an independent implementation of the wire format: it shares no types with package emapi,
// so a client bug cannot hide behind a shared struct. It is deliberately strict where EM is (or
// may be): it rejects what a real server could reject, so the client is forced to send exactly
// what em-api.md documents. Where EM is known to be more forgiving than a schema (its .NET
// data-contract reader skips what it does not know) Config.Lenient simulates that, because a
// forgiving server hides a client's mistakes in a different way.
//
// Wire choices where the documentation is silent (see em-api.md and the two seed pages):
//
//   - Answers are XML unless Accept is exactly application/json. Every XML document's root is in
//     the namespace http://www.veeam.com/ent/v1.0; JSON answers start with a UTF-8 BOM and write
//     "&", "<" and ">" literally.
//   - JSON keys are the XML element and attribute names; <Links><Link/></Links> is a "Links"
//     array, <EntityReferences> holds a "Refs" array, <Tasks> a "Tasks" array, and the intervals
//     answer "Intervals" and "RestorePoints" arrays. /query nests every list twice
//     ({"Refs":{"Refs":[…]}}, {"Entities":{"RestoreSessions":{"RestoreSessions":[…]}}}).
//     Booleans, Progress and Rpo are JSON booleans and numbers.
//   - DateTimes in answers are UTC without a zone suffix, whole seconds (2021-02-17T15:31:40).
//     Rpo in the intervals answer is an integer number of seconds (15). In request bodies and
//     /query filters DateTimes are UTC, written 2021-02-17T15:31:40, 2021-02-17T15:31:40Z or
//     2021-02-17T15:31:40.123Z (one to seven fractional digits, with Z only); offsets are refused.
//   - Request bodies: a JSON body is read only when Accept is exactly application/json and
//     Content-Type is application/json. When Accept names JSON at all EM reads the body as JSON, so
//     an XML body then fails with 400 "Node [root] does not exist"; Accept JSON with another
//     Content-Type fails the same way. The point-in-time element is spelt as
//     Config.PointInTimeElement says (default RestoreAtPointinTime) in XML and JSON alike.
//   - Check order: unknown resource 404, wrong method 405, token 401, role 403, body 400, IDs 404,
//     then the target's state (400 when it is not Ready).
//   - The logon answer carries the token in the X-RestSvcSessionId header and in a cookie of the
//     same name (Path=/api); a request with that cookie is served in the cookie's session even
//     when its header names another, as EM does.
//   - /sessionMngr/ requires ?v=latest or a supported version (v1_5, v1_6, v1_7), else 400.
//   - GET of a single resource without ?format=Entity answers its <EntityRef> reference form.
//   - Tasks belong to the logon session that created them (Config.TasksAcrossSessions turns that
//     off) and are numbered per session, so task-1 of a new session is another task.
//   - The failover 202 answer is exactly the seed's (Delete link only); GET /tasks/{id} also
//     carries the Rel="Related" RestoreSession link while the task is running, so a client can
//     follow progress, and a client must cope with its absence (Script.NoRelatedLink).
//   - Restore sessions: JobType "CdpFailover" (EM's real value is undocumented), Name
//     "CDP failover <target>", VmDisplayName the VM or vApp name. DELETE of a running task ends it
//     at once: task Finished, Success=false, "Stopped by user"; restore session Stopped, Failed,
//     Progress 100 (Config.DeleteOnlyRemoves: the task is removed and the failover goes on).
//   - A failed-over target is in the Failover state: a second failover of it is a 400 <Error>
//     until Server.Failback (Config.AllowRepeatFailover turns the check off).
//   - /query: FIQL-like filters ("==", "!=", "<", "<=", ">", ">="; ";" AND binds tighter than ","
//     OR; values bare or double-quoted with doubled quotes), exact parameter, type, field and
//     format names, pageSize 1..1000 (default 100), page from 1; the query string is split at
//     "&" only, so a raw ";" stays in the filter. Text comparisons are case-insensitive and allow
//     "==" and "!=" only; a time field a session lacks (EndTime while running) matches no clause.
//   - PolicyUid and ReplicaUid carry bare GUIDs, as Veeam's parameter examples show.
//   - Hrefs use the request's Host, with https when the request came over TLS.
//   - The VM entity's root is <CdpReplicaVm> as em-api.md's table says, although Veeam's "Mapping
//     Link Types to XML Schema Elements" page names the element <VmCdpReplica>: a client should
//     not depend on the root element's name.
//
// Beyond the shared contract the server offers Failovers (what each accepted failover POST was
// understood to ask for, and what it used), AddRestoreSession (plant another kind of restore),
// Failback, and fault injection such as DropResponses (serve, then cut the connection before the
// answer). The request log keeps the last 90,000 to 100,000 requests so a long console demo stays
// bounded.
package emsim
