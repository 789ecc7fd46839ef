package api

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/raydeploy/sdk/raydeploy"
)

// containerLister is implemented by Deployers that can list a node's
// containers over their own connections (raydeploy.Deployer.Containers).
type containerLister interface {
	Containers(ctx context.Context, node string) ([]raydeploy.ObservedContainer, error)
}

// Defaults of the container watch.
const (
	defaultContainerRefresh = time.Minute
	containerListTimeout    = 15 * time.Second
)

// nodeContainers is what the watch last saw on one node.
type nodeContainers struct {
	list []raydeploy.ObservedContainer
	asOf time.Time // when list was taken; zero: never
	err  string    // the last attempt's error (list is then the previous one)
}

// containerWatch keeps the containers last seen on each node. One goroutine
// refreshes it, node after node, every interval and after each execution or
// plan; status requests only read it.
type containerWatch struct {
	lister   containerLister
	nodes    []string
	interval time.Duration // <= 0: only after runs
	kickc    chan struct{}

	mu   sync.Mutex
	seen map[string]nodeContainers
}

func newContainerWatch(l containerLister, nodes []string, interval time.Duration) *containerWatch {
	return &containerWatch{lister: l, nodes: nodes, interval: interval, kickc: make(chan struct{}, 1), seen: map[string]nodeContainers{}}
}

// kick asks for a refresh soon; it never blocks. Nil-safe.
func (w *containerWatch) kick() {
	if w == nil {
		return
	}
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

// loop refreshes at once, then on every tick or kick, until ctx ends.
func (w *containerWatch) loop(ctx context.Context, onErr func(node string, err error)) {
	var tick <-chan time.Time
	if w.interval > 0 {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		w.refresh(ctx, onErr)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-w.kickc:
		}
	}
}

// refresh lists each node's containers, one node at a time, each bounded by
// containerListTimeout.
func (w *containerWatch) refresh(ctx context.Context, onErr func(node string, err error)) {
	for _, node := range w.nodes {
		if ctx.Err() != nil {
			return
		}
		lctx, cancel := context.WithTimeout(ctx, containerListTimeout)
		list, err := w.lister.Containers(lctx, node)
		cancel()
		w.mu.Lock()
		nc := w.seen[node]
		if err != nil {
			nc.err = err.Error()
		} else {
			sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
			nc = nodeContainers{list: list, asOf: time.Now().UTC()}
		}
		w.seen[node] = nc
		w.mu.Unlock()
		if err != nil && onErr != nil && ctx.Err() == nil {
			onErr(node, err)
		}
	}
}

// of returns what was last seen on node (zero when never, or w is nil).
func (w *containerWatch) of(node string) nodeContainers {
	if w == nil {
		return nodeContainers{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[node]
}

// counts totals the containers last seen on every node; asOf is the oldest
// node's observation, zero unless every node was observed.
func (w *containerWatch) counts() (c ContainerCounts, asOf time.Time, ok bool) {
	if w == nil {
		return c, asOf, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, node := range w.nodes {
		nc, seen := w.seen[node]
		if !seen || nc.asOf.IsZero() {
			return ContainerCounts{}, time.Time{}, false
		}
		if asOf.IsZero() || nc.asOf.Before(asOf) {
			asOf = nc.asOf
		}
		for _, ct := range nc.list {
			c.Total++
			if ct.State == "running" {
				c.Running++
			}
		}
	}
	return c, asOf, true
}

// containerNames is NodeInfo.containers: the names last seen on the node.
func (nc nodeContainers) names() []string {
	out := make([]string, 0, len(nc.list))
	for _, c := range nc.list {
		out = append(out, c.Name)
	}
	return out
}

// details is NodeDetails.containers.
func (nc nodeContainers) details() []NodeContainer {
	out := make([]NodeContainer, 0, len(nc.list))
	for _, c := range nc.list {
		out = append(out, NodeContainer{Name: c.Name, Status: c.State, Image: c.Image})
	}
	return out
}

// raydeploy.Deployer lists containers and reaches nodes over HTTP.
var (
	_ containerLister = (*raydeploy.Deployer)(nil)
	_ nodeHTTP        = (*raydeploy.Deployer)(nil)
)
