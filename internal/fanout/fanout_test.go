package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-multierror"

	"github.com/raydeploy/sdk/checkpoint"
)

// node is a test node: its name, else its address, is its ID.
type node struct{ Name, Address string }

func (n node) ID() string {
	if n.Name != "" {
		return n.Name
	}
	return n.Address
}

func testNodes(n int) []node {
	out := make([]node, n)
	for i := range out {
		out[i] = node{Name: fmt.Sprintf("w%d", i), Address: fmt.Sprintf("192.0.2.%d", i+1)}
	}
	return out
}

func TestForEachNodeBoundsConcurrency(t *testing.T) {
	nodes := testNodes(40)
	var running, peak, calls atomic.Int32
	err := Each(context.Background(), nodes, Options{Concurrency: 5}, func(ctx context.Context, n node) error {
		calls.Add(1)
		cur := running.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachNode = %v, want nil", err)
	}
	if calls.Load() != 40 {
		t.Errorf("fn called %d times, want 40", calls.Load())
	}
	if p := peak.Load(); p > 5 || p < 2 {
		t.Errorf("peak concurrency %d, want between 2 and 5", p)
	}
}

func TestForEachNodeSlowNodeHoldsNoBatch(t *testing.T) {
	// One node blocks until all the others are done: with fixed batches of
	// 2 it would deadlock; a pool lets the others through the free slot.
	nodes := testNodes(10)
	var done atomic.Int32
	release := make(chan struct{})
	ctx := t.Context() // a deadlock hangs here; the test timeout reports it
	err := Each(ctx, nodes, Options{Concurrency: 2}, func(ctx context.Context, n node) error {
		if n.Name == "w0" {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if done.Add(1) == 9 {
			close(release)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachNode = %v, want nil (the slow node held the others)", err)
	}
}

func TestForEachNodeOneFailure(t *testing.T) {
	nodes := testNodes(5)
	errBoom := errors.New("boom")
	var ok atomic.Int32
	err := Each(context.Background(), nodes, Options{Op: "connect"}, func(ctx context.Context, n node) error {
		if n.Name == "w3" {
			return fmt.Errorf("dial: %w", errBoom)
		}
		ok.Add(1)
		return nil
	})
	if ok.Load() != 4 {
		t.Errorf("%d nodes succeeded, want 4", ok.Load())
	}
	var me *multierror.Error
	if !errors.As(err, &me) || len(me.Errors) != 1 {
		t.Fatalf("err = %v, want a *multierror.Error with one error", err)
	}
	var ne *checkpoint.NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("errors.As(*checkpoint.NodeError) failed on %v", err)
	}
	if ne.Node != "w3" || ne.Op != "connect" {
		t.Errorf("NodeError = %+v, want node w3 op connect", ne)
	}
	if got, want := ne.Error(), "node w3: connect: dial: boom"; got != want {
		t.Errorf("NodeError.Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, errBoom) {
		t.Errorf("errors.Is(err, errBoom) = false through the multierror")
	}
	if diff := cmp.Diff([]string{"w3"}, checkpoint.FailedNodes(err)); diff != "" {
		t.Errorf("FailedNodes (-want +got):\n%s", diff)
	}
}

func TestFanoutResultsAndErrorsInNodeOrder(t *testing.T) {
	nodes := testNodes(6)
	res, err := Map(context.Background(), nodes, Options{Concurrency: 3}, func(ctx context.Context, n node) (string, error) {
		if n.Name == "w1" || n.Name == "w4" {
			// Finish the later node first: order must still follow nodes.
			if n.Name == "w1" {
				time.Sleep(5 * time.Millisecond)
			}
			return "", errors.New("down")
		}
		if n.Name == "w5" {
			panic("bug in fn")
		}
		return n.Address, nil
	})
	want := map[string]string{"w0": "192.0.2.1", "w2": "192.0.2.3", "w3": "192.0.2.4"}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"w1", "w4", "w5"}, checkpoint.FailedNodes(err)); diff != "" {
		t.Errorf("FailedNodes (-want +got):\n%s", diff)
	}
	var me *multierror.Error
	if errors.As(err, &me) {
		if got := me.Errors[2].Error(); got != "node w5: panic: bug in fn" {
			t.Errorf("panic error = %q", got)
		}
	}
}

func TestForEachNodeCancellationStopsPromptly(t *testing.T) {
	nodes := testNodes(100)
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	// Every started call returns only once it sees the cancellation: if
	// ForEachNode did not pass it on, the test would hang (and its timeout
	// would say so).
	err := Each(ctx, nodes, Options{Concurrency: 4}, func(ctx context.Context, n node) error {
		if started.Add(1) == 4 {
			cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if s := started.Load(); s > 8 {
		t.Errorf("%d nodes started after cancel, want at most the running 4 plus a race margin", s)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false: %v", err)
	}
	if !errors.Is(err, ErrNotStarted) {
		t.Errorf("errors.Is(err, ErrNotStarted) = false: the unstarted nodes must be reported")
	}
	if n := len(checkpoint.FailedNodes(err)); n != 100 {
		t.Errorf("%d nodes reported failed, want all 100 (running ones cancelled, others not started)", n)
	}
}

func TestFanoutRefusesDuplicateIDs(t *testing.T) {
	nodes := []node{{Address: "192.0.2.1"}, {Name: "192.0.2.1", Address: "192.0.2.9"}}
	called := false
	err := Each(context.Background(), nodes, Options{}, func(ctx context.Context, n node) error {
		called = true
		return nil
	})
	if err == nil || called {
		t.Fatalf("ForEachNode with duplicate IDs = %v (called=%v), want an error before any call", err, called)
	}
}

func TestFailedNodesEmpty(t *testing.T) {
	if got := checkpoint.FailedNodes(nil); got != nil {
		t.Errorf("checkpoint.FailedNodes(nil) = %v", got)
	}
	if got := checkpoint.FailedNodes(errors.New("plain")); got != nil {
		t.Errorf("checkpoint.FailedNodes(plain) = %v", got)
	}
	wrapped := fmt.Errorf("deploy: %w", &checkpoint.NodeError{Node: "h", Err: errors.New("x")})
	if diff := cmp.Diff([]string{"h"}, checkpoint.FailedNodes(wrapped)); diff != "" {
		t.Errorf("checkpoint.FailedNodes(wrapped) (-want +got):\n%s", diff)
	}
}
