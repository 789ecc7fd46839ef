package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/raydeploy/sdk/checkpoint"
)

// DefaultConcurrency bounds how many nodes are worked on at once.
const DefaultConcurrency = 64

// ErrNotStarted marks a node whose work was never started because the
// context ended first; the NodeError also wraps the context's error.
var ErrNotStarted = errors.New("not started")

// Node is what a fan-out needs of a node: a unique ID.
type Node interface{ ID() string }

// Options tune Each and Map.
type Options struct {
	// Concurrency is the most nodes worked on at once (default
	// DefaultConcurrency).
	Concurrency int
	// Op names the operation in each NodeError.
	Op string
	// Logger receives a debug line per node start and finish (default: none).
	Logger *slog.Logger
}

// Each calls fn for every node, at most opts.Concurrency at a time.
// A new node starts as soon as any running one finishes, so one slow node
// holds up nothing but itself. When ctx ends, no further node is started:
// each of those gets a NodeError wrapping ErrNotStarted and ctx.Err(); the
// running calls see the cancellation through their ctx. A panic in fn is
// turned into that node's error.
//
// The result is nil when every call succeeded, else a *multierror.Error
// holding one *checkpoint.NodeError per failed node, in the order of nodes; errors.As
// and errors.Is reach the NodeErrors and their causes through it. Nodes
// with the same ID are refused before anything runs.
func Each[N Node](ctx context.Context, nodes []N, opts Options, fn func(ctx context.Context, n N) error) error {
	_, err := Map(ctx, nodes, opts, func(ctx context.Context, n N) (struct{}, error) {
		return struct{}{}, fn(ctx, n)
	})
	return err
}

// Map is Each for calls that return a value: the map holds the
// result of every node that succeeded, by node ID.
func Map[N Node, T any](ctx context.Context, nodes []N, opts Options, fn func(ctx context.Context, n N) (T, error)) (map[string]T, error) {
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
				errs[j] = &checkpoint.NodeError{Node: nodes[j].ID(), Op: opts.Op, Err: fmt.Errorf("%w: %w", ErrNotStarted, err)}
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
				if ne, ok := err.(*checkpoint.NodeError); ok && ne.Node == n.ID() {
					errs[i] = ne // already names this node: don't say it twice
				} else {
					errs[i] = &checkpoint.NodeError{Node: n.ID(), Op: opts.Op, Err: err}
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
func call[N Node, T any](ctx context.Context, n N, fn func(context.Context, N) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(ctx, n)
}
