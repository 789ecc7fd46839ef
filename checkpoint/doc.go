// Package checkpoint orders and runs named steps, independent of Ray: run all,
// one, from one, resume from the ledger, and dry-run; it owns the state ledger,
// the cluster lock and the progress events.
//
// A Checkpoint plans (what would change, per node; an empty plan means already
// satisfied) and runs. Optional behaviour is found by type assertion:
// RiskDescriber (risks shown to the approver), ConfigDigester (resume skips a
// checkpoint that succeeded with the same config digest) and NodeLister. Step
// builds a Checkpoint from functions.
//
// A List holds checkpoints in order and can be edited (InsertBefore,
// InsertAfter, Remove, Replace). Open locks the state directory and returns a
// Runner; for each selected checkpoint it plans, records an empty plan as
// skipped-satisfied, asks the approval.Approver when the checkpoint needs
// approval or is destructive (and refuses any decision that is not approved,
// covers another plan digest, lacks acknowledged risks for a destructive step,
// or has expired), runs, and records every node's outcome in the Ledger.
//
// State lives in one directory (mode 0700): ledger.json (versioned; corrupt
// or unknown versions are refused, never reset), lock.json (O_EXCL, heartbeat,
// taken over when stale or its pid is dead on this host) and
// deployment-failure.json (what failed and the command that resumes). Every
// file is written with WriteFileAtomic (0600). Events go to an EventSink
// through a bounded buffer: a slow sink loses events (counted), never stalls a run.
package checkpoint
