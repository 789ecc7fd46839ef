package checkpoint

import (
	"fmt"

	"github.com/hashicorp/go-multierror"
)

// NodeError is the failure of an operation on one node: the one per-node
// error type of the SDK. Fan-outs over nodes collect them in a
// *multierror.Error; the Runner wraps every failed node's result in one
// (with Checkpoint set), so errors.As finds it and errors.Is reaches the
// cause.
type NodeError struct {
	// Checkpoint is the checkpoint the node failed in, when known.
	Checkpoint string
	// Node is the node's ID (its name, or its address when unnamed).
	Node string
	// Op names the operation, like "connect" or "image"; may be empty.
	Op string
	// Err is the cause.
	Err error
}

// Error renders "node w1: op: cause" ("node w1: cause" without Op).
func (e *NodeError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("node %s: %v", e.Node, e.Err)
	}
	return fmt.Sprintf("node %s: %s: %v", e.Node, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// NodeErrors returns the outermost *NodeError of every node in err (through
// any wrapping, errors.Join and *multierror.Error), in order, one per node.
func NodeErrors(err error) []*NodeError {
	var out []*NodeError
	seen := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ne, ok := e.(*NodeError); ok {
			if !seen[ne.Node] {
				seen[ne.Node] = true
				out = append(out, ne)
			}
			return
		}
		switch u := e.(type) {
		case *multierror.Error:
			for _, x := range u.Errors {
				walk(x)
			}
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// FailedNodes lists the IDs of the nodes with a *NodeError in err, in
// order, each once.
func FailedNodes(err error) []string {
	var out []string
	for _, ne := range NodeErrors(err) {
		out = append(out, ne.Node)
	}
	return out
}
