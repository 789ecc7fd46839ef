// Package sdk is the raydeploy SDK: it stands up and operates Ray clusters on
// Linux machines you own, with no Kubernetes in between.
//
// The SDK reaches every node over SSH (one connection per node, reused by every
// step), drives each node's Docker Engine through that connection, and deploys
// in six named checkpoints:
//
//	prerequisites-check     reports, changes nothing
//	docker-installation     approval
//	cleanup-existing        approval, destructive
//	ray-deployment
//	monitoring-deployment
//	final-validation
//
// A person approves the risky checkpoints from a terminal, a file, or a REST
// call, and every decision is written to a hash-chained audit log. State lives
// in one directory per cluster (mode 0700), written atomically, so a failed run
// can be resumed with a plain re-run.
//
// The packages, each with one job:
//
//   - raydeploy: the desired cluster (Cluster, Node, RayConfig), config
//     loading (YAML, Ansible inventory import), the six checkpoints, and the
//     Deployer (Deploy, Plan, Validate, Down).
//   - checkpoint: ordering and running named steps, independent of Ray: the
//     Runner, plans, the ledger (Store), the cluster lock, progress events
//     and NodeError, the per-node error.
//   - approval: deciding whether a planned step may run: plan items and
//     their digest, the decision rules (Check), Approver channels (terminal,
//     file, queue, auto), policies, and the audit log.
//   - service: a containerized service on a set of nodes (Spec), a leaf that
//     raydeploy (as ServiceSpec), monitoring and tts share.
//   - monitoring: Prometheus, Grafana, node-exporter and cAdvisor as services,
//     their configuration generated from the cluster, and the deployer's metrics.
//   - tts: the text-to-speech service on Ray Serve and a Go client for it.
//
// Dependencies point one way: raydeploy imports checkpoint, approval,
// service, monitoring and tts; monitoring and tts import service and nothing
// of raydeploy; checkpoint imports approval; internal packages (sshx,
// dockerx, raydash, fanout, testenv) are never part of the public API.
//
// The programs under examples/ are thin mains over these packages; start with
// examples/deploy-master.
package sdk
