// Package approval decides whether a planned step may run: Approver channels
// (terminal, file, queue, auto, first-of), policies, and the hash-chained audit
// log of every request and decision.
package approval
