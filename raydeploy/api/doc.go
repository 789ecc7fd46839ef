// Package api is the REST API and web UI of one raydeploy cluster: an
// http.Handler (*Server) that embedders mount in their own HTTP server.
// It speaks the seed's contract (every path of its rest-api-spec.yaml with
// the same field names, enums and status codes) and adds plans, persisted
// executions, the approval queue, an event stream, the audit log, metrics
// and health probes. Its OpenAPI 3 document is served at
// /api/v1/openapi.yaml (OpenAPI returns it); the tests validate every
// request and response against it.
//
// # Wiring
//
//	srv, _ := api.New(api.Config{Tokens: tokens})
//	d, _ := raydeploy.New(cluster, raydeploy.Options{
//		Approver: srv.Approver(), Events: srv.EventSink(),
//	})
//	_ = srv.Attach(d) // the server records into d.Audit(), the log New opened
//	http.ListenAndServe("127.0.0.1:8000", srv)
//
// Nothing in the library core imports this package.
//
// # Authentication and roles
//
// Every endpoint but /healthz, /readyz, /api/v1/openapi.yaml and the UI's
// static files needs "Authorization: Bearer <token>". Tokens live hashed
// (SHA-256) in a 0600 file (CreateToken, LoadTokens); each has a name (the
// principal) and a role: viewer (read) < operator (plan, start, cancel,
// resume) < approver (decide approval requests) < admin. Failed
// authentications are rate-limited per remote IP (429 beyond the limit).
// Bodies are limited (Config.MaxBodyBytes) and decoded strictly (unknown
// keys refused). Error answers carry a code and a message, never a stack
// trace or an internal path. Every mutating request is appended to the
// audit log with principal, remote address, method, path and status. CORS
// is off unless Config.CORSOrigins lists origins. TLS and client
// certificates (mTLS) are the embedding server's: see examples/api-server.
//
// # Approvals
//
// Runs started through the API ask the server's approval.Queue. The
// requester of a request is the principal who started the execution; a
// decision is made by an approver principal (never a name taken from the
// body), must name the plan digest it covers (the seed's
// POST /api/v1/approvals/{name} covers the pending request's digest, shown by
// GET /api/v1/approvals/{name}), must acknowledge the risks of a
// destructive checkpoint, and must come from another principal than the
// requester unless Config.AllowSelfApproval.
//
// # Freshness of status answers
//
// No status request opens an SSH connection or runs a remote command; they
// read files in the state directory on every request (the ledger is decoded
// again only when its file changed; the checkpoint list, names and flags, is
// read from the Deployer once):
//
//   - checkpoint and per-node status, times, summaries and errors, plan
//     digests and approvers (GET /api/v1/checkpoints..., /api/v1/cluster/status,
//     the node checkpoints of /api/v1/nodes/{name}): the ledger, written by
//     the runner at every checkpoint and node transition, so as fresh as the
//     last transition of a run from any process (this server or the CLI).
//   - node status ONLINE / OFFLINE / UNKNOWN (/api/v1/nodes): the outcome of
//     the node's most recent ledger record; status_as_of says when it ended.
//     It is not a probe: a node that went down since shows ONLINE until a run
//     touches it.
//   - cluster health (/api/v1/cluster/health, cluster_health): the last
//     validation report (validation.json), written by final-validation and by
//     Deployer.Validate; as_of is its time. Refresh it by running
//     final-validation (POST /api/v1/checkpoints/final-validation).
//   - running execution, pending approvals, executions: in memory and in
//     api/executions/ in the state directory, current to the event.
//   - system_info of a node: the summary prerequisites-check recorded.
//   - containers of a node (/api/v1/nodes, /api/v1/nodes/{name}) and the
//     containers counts of cluster health: the cluster's containers (its
//     ownership label, running or not) as the Deployer's Containers method
//     last listed them through its existing Docker-over-SSH connection to
//     each node. One background goroutine lists them, one node at a time
//     (15 s bound each): at Attach, after each execution and plan ends, and
//     every Config.ContainerRefresh (default 1 minute; negative: only after
//     runs). containers_as_of says when (the counts: the oldest node's
//     listing); a failed listing keeps the previous list and sets
//     containers_error. Until every node was listed, the counts are the last
//     validation report's Ray containers. A Deployer without Containers
//     leaves the lists empty.
//
// POST /api/v1/plans and executions are the only requests that reach nodes
// for a run; the container listings above run in the background, and GET
// /api/v1/monitoring/prometheus is a proxy: each request reads GET /metrics
// of the cluster's Prometheus on the head (the configured monitoring
// Prometheus port, default 9090) through the Deployer's SSH connection to
// the head (its NodeHTTPClient method), 15 s bound; 502
// PROMETHEUS_UNREACHABLE when that fails or Prometheus does not answer 200,
// 503 MONITORING_DISABLED when monitoring.enabled is false. /metrics serves
// this server's own registry.
//
// # Executions
//
// An execution is kept as api/executions/<id>.json (0600) in the state
// directory, written atomically at every change. One execution or plan runs
// at a time (409 otherwise). When the server stops during a run (Close, or
// a crash found at the next start) the execution becomes INTERRUPTED;
// POST /api/v1/executions/{id}/resume starts a new one over the same
// checkpoints that skips what already succeeded.
//
// # Events and webhooks
//
// GET /api/v1/events is a Server-Sent Events stream of every checkpoint,
// node, approval and execution transition. Event ids are "<boot>-<seq>";
// Last-Event-ID resumes from the ring of the last Config.EventHistory events
// ("gap" when they are gone; "0" asks for all of them). Publishing never waits for a client: one that
// falls Config.SubscriberBuffer events behind gets "overflow" and is
// disconnected. Webhooks (Config.Webhooks) get approval.pending,
// approval.decided and run.finished as JSON signed with HMAC-SHA256
// (X-Raydeploy-Signature, VerifyWebhook), retried with exponential backoff
// from their own goroutines.
//
// # Web UI
//
// GET / serves a single page (plain HTML, CSS and JavaScript embedded with
// go:embed): cluster status and nodes, the checkpoints x nodes grid, pending
// approvals with plan, risks and digest and approve / reject buttons, live
// progress from the event stream, the audit trail with its verification,
// and links to the Ray dashboard, Grafana and Prometheus. The token is kept
// in the browser's sessionStorage only.
package api
