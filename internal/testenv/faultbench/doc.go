// Command faultbench is the fault suite: it deploys a Ray cluster into a
// testenv cluster (real sshd and dockerd per node) with the deploy-master
// program as a real process, breaks the deploy on purpose and checks that
// nothing is lost and the next run converges. It writes the results table
// of docs/RELIABILITY.md.
//
//	go run ./internal/testenv/faultbench -kills 50 -out docs/RELIABILITY.md
//
// Kill points: deploy-master is SIGKILLed after the k-th line of its
// progress output (k drawn from a seeded generator, the seed printed, so a
// point is reproducible on a loaded machine), and a re-run started at once
// (deploy-master --deploy --resume) must take the lock over, resume and
// converge: every checkpoint done in the ledger, exactly one container per
// service and node (counted by the io.raydeploy.cluster label), no
// container of the SDK without that label, the audit log's chain intact,
// and a container that is not the SDK's untouched.
//
// Node and state faults: a node killed, frozen (docker pause), cut off its
// network, its dockerd killed, its sshd restarted, its host key changed,
// the state directory full (a small tmpfs) or read-only, two deployers at
// once. Each must end the run with an error that names the node (or the
// state file) and what happened, and the next run must converge once the
// fault is repaired.
//
// The same code runs a few points in the normal test suite (TestFaults).
// It is a test-environment program: nothing in the library imports it.
package main
