// Package approval decides whether a planned step may run: Approver channels
// (terminal, file, queue, auto, first-of), policies, and the hash-chained audit
// log of every request and decision.
//
// A Request carries the plan (its items and its digest); a Decision covers
// exactly one plan digest. Channels:
//
//   - Terminal: shows the plan; only the literal "yes" approves; destructive
//     steps also need the risks acknowledged; refuses at once (ErrNotTerminal)
//     when stdin is not a terminal.
//   - File: waits for <statedir>/approvals/<checkpoint>.json in the seed's
//     format ({"approved_at", "approved_by"} plus optional "reason",
//     "acknowledge_risks", "plan_digest", "approved"); refuses symlinks,
//     group/world-writable files and files of other users; consumes each file.
//   - Queue: pending requests listed with Pending and answered with Decide
//     (the REST API's channel).
//   - Auto: explicit opt-in; destructive steps only when allowed.
//   - FirstOf: several channels at once, the first decision wins.
//
// Policy adds rules (four eyes, maximum age) on top of the digest and risk
// checks. AuditLog appends one JSON line per request, decision and outcome,
// each holding the SHA-256 of the line before; Verify finds the first broken line.
package approval
