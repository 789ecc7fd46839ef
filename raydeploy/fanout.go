package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// DefaultConcurrency bounds how many nodes ForEachNode works on at once.
const DefaultConcurrency = 64

// ErrNotStarted marks a node whose work was never started because the
// context ended first; the NodeError also wraps the context's error.
var ErrNotStarted = errors.New("not started")

// NodeError is the failure of one operation on one node.
type NodeError struct {
	// Node is the node's ID (name, or address when unnamed).
	Node string
	// Op names the operation, like "connect" or "ray-deployment".
	Op string
	// Err is the cause.
	Err error
}

// Error renders "node w1: op: err".
func (e *NodeError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("node %s: %v", e.Node, e.Err)
	}
	return fmt.Sprintf("node %s: %s: %v", e.Node, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// FanoutOptions tune ForEachNode and Fanout.
type FanoutOptions struct {
	// Concurrency is the most nodes worked on at once (default
	// DefaultConcurrency).
	Concurrency int
	// Op names the operation in each NodeError.
	Op string
	// Logger receives a debug line per node start and finish (default: none).
	Logger *slog.Logger
}

// ForEachNode calls fn for every node, at most opts.Concurrency at a time.
// A new node starts as soon as any running one finishes, so one slow node
// holds up nothing but itself. When ctx ends, no further node is started:
// each of those gets a NodeError wrapping ErrNotStarted and ctx.Err(); the
// running calls see the cancellation through their ctx. A panic in fn is
// turned into that node's error.
//
// The result is nil when every call succeeded, else a *multierror.Error
// holding one *NodeError per failed node, in the order of nodes; errors.As
// and errors.Is reach the NodeErrors and their causes through it. Nodes
// with the same ID are refused before anything runs.
func ForEachNode(ctx context.Context, nodes []Node, opts FanoutOptions, fn func(ctx context.Context, n Node) error) error {
	_, err := Fanout(ctx, nodes, opts, func(ctx context.Context, n Node) (struct{}, error) {
		return struct{}{}, fn(ctx, n)
	})
	return err
}

// Fanout is ForEachNode for calls that return a value: the map holds the
// result of every node that succeeded, by node ID.
func Fanout[T any](ctx context.Context, nodes []Node, opts FanoutOptions, fn func(ctx context.Context, n Node) (T, error)) (map[string]T, error) {
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		id := n.ID()
		if seen[id] {
			return nil, fmt.Errorf("fan-out %s: node %q listed twice", opts.Op, id)
		}
		seen[id] = true
	}
	limit := opts.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	results := make([]T, len(nodes))
	errs := make([]error, len(nodes))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, n := range nodes {
		if ctx.Err() == nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if err := ctx.Err(); err != nil {
			for j := i; j < len(nodes); j++ {
				errs[j] = &NodeError{Node: nodes[j].ID(), Op: opts.Op, Err: fmt.Errorf("%w: %w", ErrNotStarted, err)}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			log.DebugContext(ctx, "node started", "node", n.ID(), "op", opts.Op)
			v, err := call(ctx, n, fn)
			if err != nil {
				if ne, ok := err.(*NodeError); ok && ne.Node == n.ID() {
					errs[i] = ne // already names this node: don't say it twice
				} else {
					errs[i] = &NodeError{Node: n.ID(), Op: opts.Op, Err: err}
				}
				log.DebugContext(ctx, "node failed", "node", n.ID(), "op", opts.Op, "err", err)
				return
			}
			results[i] = v
			log.DebugContext(ctx, "node done", "node", n.ID(), "op", opts.Op)
		}()
	}
	wg.Wait()

	out := make(map[string]T, len(nodes))
	var merr *multierror.Error
	for i, n := range nodes {
		if errs[i] != nil {
			merr = multierror.Append(merr, errs[i])
			continue
		}
		out[n.ID()] = results[i]
	}
	return out, merr.ErrorOrNil()
}

// call runs fn, turning a panic into an error.
func call[T any](ctx context.Context, n Node, fn func(context.Context, Node) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(ctx, n)
}

// FailedNodes lists the IDs of the nodes with a *NodeError in err (through
// any wrapping and multierror), in order, each once.
func FailedNodes(err error) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ne, ok := e.(*NodeError); ok {
			if !seen[ne.Node] {
				seen[ne.Node] = true
				out = append(out, ne.Node)
			}
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case *multierror.Error:
			for _, x := range u.Errors {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
