package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/raydeploy/sdk/approval"
	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/sshx"
)

// typedPlan keeps a checkpoint's typed per-node plan from Plan to Run. Run
// carries out a plan only when it is the one the last Plan made (same
// digest, so the items and their targets are what was shown and approved),
// and then from the typed form: it never parses an item's text and never
// plans again.
type typedPlan[T any] struct {
	mu     sync.Mutex
	digest string
	nodes  map[string]T
}

// keep records the typed plan behind p.
func (t *typedPlan[T]) keep(p checkpoint.Plan, nodes map[string]T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.digest, t.nodes = p.Digest(), nodes
}

// take returns the typed plan behind p, or an error wrapping
// checkpoint.ErrStale when p is not the plan last made.
func (t *typedPlan[T]) take(p checkpoint.Plan) (map[string]T, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := p.Digest(); t.nodes == nil || d != t.digest {
		return nil, fmt.Errorf("%w: checkpoint %s was given a plan it did not make last (digest %s, last planned %s)", checkpoint.ErrStale, p.Checkpoint, d, t.digest)
	}
	return t.nodes, nil
}

// containerTarget is the plan target of a container as found when planning
// (st nil: absent).
func containerTarget(name string, st *dockerx.ContainerState, spec string) *approval.Target {
	t := &approval.Target{Kind: approval.TargetContainer, Name: name, Spec: spec}
	if st != nil {
		t.ID, t.ImageID = st.ID, st.ImageID
	}
	return t
}

// containerChanged says how the container named by t differs from what was
// planned ("" when it is the same): replaced by another, gone, or there
// although planned absent.
func containerChanged(ctx context.Context, e *dockerx.Engine, t *approval.Target) (string, error) {
	st, err := e.Inspect(ctx, t.Name)
	switch {
	case errors.Is(err, dockerx.ErrNotFound):
		if t.ID != "" {
			return fmt.Sprintf("container %s (%s) is gone since planning", t.Name, shortID(t.ID)), nil
		}
		return "", nil
	case err != nil:
		return "", err
	case t.ID == "":
		return fmt.Sprintf("container %s was created since planning (now %s)", t.Name, shortID(st.ID)), nil
	case st.ID != t.ID:
		return fmt.Sprintf("container %s was replaced since planning: planned %s, now %s", t.Name, shortID(t.ID), shortID(st.ID)), nil
	}
	return "", nil
}

// procStartScript prints a process's start time (clock ticks after boot,
// field 22 of /proc/<pid>/stat; the command name before it may hold spaces
// and parentheses, so everything up to the last ") " is cut first).
func procStartScript(pid int) string {
	return fmt.Sprintf("sed 's/.*) //' /proc/%d/stat 2>/dev/null | cut -d' ' -f20", pid)
}

// processChanged says how the process named by t differs from what was
// planned: gone, or its pid now belongs to another process.
func (d *Deployer) processChanged(ctx context.Context, n Node, t *approval.Target) (string, error) {
	out, err := d.conn.run(ctx, n, procStartScript(t.PID)+"; true")
	if err != nil {
		return "", err
	}
	got := strings.TrimSpace(out)
	switch {
	case got == "":
		return fmt.Sprintf("process %d (%s) is gone since planning", t.PID, t.Command), nil
	case got != strconv.FormatUint(t.StartTime, 10):
		return fmt.Sprintf("pid %d now belongs to another process (started at tick %s, planned %d)", t.PID, got, t.StartTime), nil
	}
	return "", nil
}

// dirChanged says whether a directory planned for removal is no longer a
// plain directory (gone, or replaced by a symbolic link).
func (d *Deployer) dirChanged(ctx context.Context, n Node, t *approval.Target) (string, error) {
	q := sshx.Quote(t.Path)
	out, err := d.conn.run(ctx, n, fmt.Sprintf("if [ -L %s ]; then echo link; elif [ -d %s ]; then echo dir; else echo none; fi", q, q))
	if err != nil {
		return "", err
	}
	switch strings.TrimSpace(out) {
	case "dir":
		return "", nil
	case "link":
		return t.Path + " is a symbolic link now", nil
	}
	return t.Path + " is gone since planning", nil
}

// stale returns the *checkpoint.StaleError of the first item whose target
// changed, by asking changed for each; nil when none did.
func stale(n Node, items []approval.PlanItem, changed func(approval.PlanItem) (string, error)) error {
	for _, it := range items {
		c, err := changed(it)
		if err != nil {
			return fmt.Errorf("check %s %s: %w", it.Action, it.Target, err)
		}
		if c != "" {
			return &checkpoint.StaleError{Node: n.ID(), Item: it, Changed: c}
		}
	}
	return nil
}
