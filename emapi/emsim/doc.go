// Package emsim is a strict, in-memory simulator of the Veeam Backup Enterprise Manager REST API
// (the CDP failover subset failover-bot uses), for tests over httptest and for the console demo.
//
// It is an independent implementation of the wire format: it shares no types with package emapi,
// so a client bug cannot hide behind a shared struct. It is deliberately strict where EM is (or
// may be): it rejects what a real server could reject, so the client is forced to send exactly
// what em-api.md documents.
//
// Wire choices where the documentation is silent (see em-api.md and the two seed pages):
//
//   - Answers are XML unless Accept is exactly application/json. Every XML document's root is in
//     the namespace http://www.veeam.com/ent/v1.0; JSON answers start with a UTF-8 BOM.
//   - JSON keys are the XML element and attribute names; <Links><Link/></Links> is a "Links"
//     array, <EntityReferences> holds a "Refs" array, <Tasks> a "Tasks" array, and the intervals
//     answer "Intervals" and "RestorePoints" arrays. Booleans and Progress are JSON booleans and
//     numbers.
//   - DateTimes in answers are UTC with a "Z" (2021-02-17T15:31:40Z); in request bodies they must be
//     UTC without a zone or fraction (2021-02-17T15:31:40), as the seeds write them.
//   - Request bodies: a JSON body is read only when Accept is exactly application/json and
//     Content-Type is application/json. When Accept names JSON at all EM reads the body as JSON, so
//     an XML body then fails with 400 "Node [root] does not exist"; Accept JSON with another
//     Content-Type fails the same way.
//   - Check order: unknown resource 404, wrong method 405, token 401, role 403, body 400, IDs 404.
//   - /sessionMngr/ requires ?v=latest or a supported version (v1_5, v1_6, v1_7), else 400.
//   - GET of a single resource without ?format=Entity answers its <EntityRef> reference form.
//   - The failover 202 answer is exactly the seed's (Delete link only); GET /tasks/{id} also
//     carries the Rel="Related" RestoreSession link while the task is running, so a client can
//     follow progress, and a client must cope with its absence.
//   - Restore sessions: JobType "CdpFailover", Name "CDP failover <target>", VmDisplayName the VM
//     or vApp name. DELETE of a running task ends it at once: task Finished, Success=false,
//     "Stopped by user"; restore session Stopped, Failed, Progress 100.
//   - PolicyUid and ReplicaUid carry bare GUIDs, as Veeam's parameter examples show.
//   - Hrefs use the request's Host, with https when the request came over TLS.
//   - The VM entity's root is <CdpReplicaVm> as em-api.md's table says, although Veeam's "Mapping
//     Link Types to XML Schema Elements" page names the element <VmCdpReplica>: a client should
//     not depend on the root element's name.
//
// Beyond the shared contract the server offers Failovers (what each accepted failover POST was
// understood to ask for) and DropResponses (serve, then cut the connection before the answer).
// The request log keeps the last 90,000 to 100,000 requests so a long console demo stays bounded.
package emsim
