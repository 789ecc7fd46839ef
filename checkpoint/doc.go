// Package checkpoint orders and runs named steps, independent of Ray: run all,
// one, from one, resume from the ledger, and dry-run; it owns the state ledger,
// the cluster lock and the progress events.
package checkpoint
